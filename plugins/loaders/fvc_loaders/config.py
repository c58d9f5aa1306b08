"""The keys of the ``metadata`` and ``synthetic`` dataset sections of experiment.yaml.

Pydantic only: the CLI imports this to validate a config, so nothing heavy here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from fvc_core.contract import ClipSpec

# Bounds where a value stops making sense for a clip, far outside any real setting but refused in one
# line, not minutes into a run: a frame every 10 s to 1,000 frames a second (data.fps: 1e-9 took one
# frame per 31 years), 4096-pixel frames, 10,000 frames a clip (the seed's setup samples 500).
MIN_FPS, MAX_FPS = 0.1, 1000.0
MAX_SIZE = 4096
MAX_FRAMES = 10_000


class ClipConfig(BaseModel):
    """How a video becomes a clip; shared by every dataset of this distribution."""

    model_config = ConfigDict(extra="forbid")

    sampler: Literal["uniform", "window"] = Field(
        "uniform", description="uniform: num_frames frames spread over the whole video. window: clip_len "
        "consecutive frames (at fps), one random window per training epoch, clips_per_video evenly placed "
        "windows in evaluation (their fake probabilities averaged).")
    num_frames: int = Field(16, ge=1, le=MAX_FRAMES, description="Frames sampled uniformly over each video's "
                            "duration (sampler: uniform).")
    clip_len: int | None = Field(None, ge=1, le=MAX_FRAMES, description="Frames per window (sampler: window; "
                                 "required there).")
    fps: float | None = Field(None, ge=MIN_FPS, le=MAX_FPS, description="Frame rate of a window, frames picked "
                              "by timestamp (dropped or repeated); unset: the video's own rate (sampler: window).")
    clips_per_video: int = Field(1, ge=1, le=1000, description="Evenly placed windows scored per video in evaluation, "
                                 "their fake probabilities averaged (sampler: window).")
    size: int = Field(256, ge=8, le=MAX_SIZE, description="Clips are letterboxed to size x size pixels.")
    on_bad_video: Literal["fail", "skip"] = Field(
        "fail", description="A video that cannot be read stops the run (fail) or is left out and reported (skip)."
    )
    decoder: str = Field("pyav", description="What decodes the videos: pyav (fvc's reader) or a decoder a plugin "
                         "registers (fvc-torchcodec: torchcodec). Frames are picked by the same rule either way.")
    cache: Path | None = Field(None, description="Folder for decoded, letterboxed clips (fvc's own): later epochs "
                               "read them instead of decoding. Keyed by video content and clip settings; "
                               "augmentation is applied after it. Unset: decode every time.")
    cache_max_gb: float = Field(20.0, gt=0, description="data.cache is kept under this size (GB); the least "
                                "recently used clips go first.")
    augment: bool = Field(False, description="Augment training clips (reproducibly, from the seed). Off by "
                          "default: it lowered test AUC on all three datasets measured (docs/loader.md).")

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, data: object) -> object:
        # `data.num_frames=null` is how a command line drops a key the YAML sets: switching a uniform
        # experiment to data.sampler=window (a sweep over samplers, say) would otherwise be impossible.
        if isinstance(data, dict):
            data = {k: v for k, v in data.items() if not (v is None and k in ("num_frames", "clips_per_video"))}
        return data

    @model_validator(mode="after")
    def _keys_of_the_sampler(self) -> ClipConfig:
        # A key of the other sampler would be silently ignored: say so instead.
        # A key at its default is not "given": config.yaml, read back by fvc predict and evaluate, holds them all.
        fields = type(self).model_fields
        given = {k for k in self.model_fields_set if getattr(self, k) != fields[k].default}
        if self.sampler == "uniform":
            wrong = [k for k in ("clip_len", "fps", "clips_per_video") if k in given]
            if wrong:
                verb = "apply" if len(wrong) > 1 else "applies"
                raise PydanticCustomError("sampler", f"{', '.join(wrong)} {verb} only to sampler: window "
                                          "(this one is uniform: num_frames frames over the whole video; "
                                          f"{wrong[0]}=null drops it)")
        else:
            if self.clip_len is None:
                raise PydanticCustomError("sampler", "sampler: window needs clip_len (frames per window)")
            if "num_frames" in given:
                raise PydanticCustomError("sampler", "num_frames applies only to sampler: uniform; a window "
                                          "has clip_len frames (num_frames=null drops it)")
        return self

    @property
    def frames_per_clip(self) -> int:
        """T of the clips the model sees."""
        return self.clip_len if self.sampler == "window" and self.clip_len else self.num_frames

    def clip_spec(self) -> ClipSpec:
        """The clips a model receives, checked against what it declares (fvc_core.model_input)."""
        window = self.sampler == "window"
        frames_key = "data.clip_len" if window else "data.num_frames"
        return ClipSpec(frames=self.frames_per_clip, height=self.size, width=self.size, sampler=self.sampler,
                        fps=self.fps if window else None,
                        keys={"frames": frames_key, "size": "data.size", "sampler": "data.sampler", "fps": "data.fps"})


class MetadataConfig(ClipConfig):
    """A Parquet table of videos and labels."""

    metadata: Path = Field(..., description="Parquet table; relative video paths are taken from its folder.")
    video_column: str = "video_path"
    label_column: str = "label"
    group_column: str | None = Field(
        None, description="Videos sharing a value (a source and its fakes) never straddle a split. "
        "Unset: the table's 'group' column when it has one (as `fvc index --layout` writes), else none; "
        "'' turns grouping off."
    )
    labels: dict[str, int] = Field(
        default_factory=lambda: {"real": 0, "fake": 1},
        description="Label names and their class (0 = real, 1 = fake); 0/1 integers are always accepted.",
    )

    @field_validator("labels")
    @classmethod
    def _classes_are_binary(cls, labels: dict[str, int]) -> dict[str, int]:
        bad = {k: v for k, v in labels.items() if v not in (0, 1)}
        if bad:
            raise ValueError(f"label classes must be 0 (real) or 1 (fake), got {bad}")
        return labels


class SyntheticConfig(ClipConfig):
    """Generated moving-texture clips and their manipulated copies: real videos, no download."""

    root: Path = Field(Path("data/synthetic"), description="Where the videos and metadata.parquet are written.")
    videos: int = Field(24, ge=1, le=100_000, description="Real clips; each gets one fake made from it "
                        "(2 x videos files).")
    frames: int = Field(16, ge=1, le=MAX_FRAMES, description="Frames encoded per clip.")
    frame_size: int = Field(96, ge=32, le=MAX_SIZE, description="Width and height of the encoded clips (even).")
    seed: int = Field(0, description="Same seed, same videos.")
    # Smaller clip defaults than a real table's: the point is a run that finishes in minutes on a CPU.
    num_frames: int = Field(8, ge=1, le=MAX_FRAMES, description="Frames sampled uniformly over each video's "
                            "duration.")
    size: int = Field(64, ge=8, le=MAX_SIZE, description="Clips are letterboxed to size x size pixels.")

    @field_validator("frame_size")
    @classmethod
    def _even(cls, value: int) -> int:
        if value % 2:
            raise ValueError("must be even (H.264 4:2:0 needs even sizes)")
        return value
