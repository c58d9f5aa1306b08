"""What a model needs of its clips, and what a dataset's clips are, both known from the configs
alone: a mismatch is a config error from ``fvc check`` and ``fvc run`` before anything is built.

A dataset plugin's config model declares its clips with a method ``clip_spec() -> ClipSpec``; a
model plugin's config model declares its needs with ``model_input() -> ModelInput``. Either may be
absent (nothing is checked then). Light: no torch, no pydantic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Sampler = Literal["uniform", "window"]
SAMPLER_MEANING = {"uniform": "frames spread over the whole video", "window": "consecutive frames"}


@dataclass(frozen=True)
class ClipSpec:
    """The clips a dataset gives a model: ``(frames, 3, height, width)`` each."""

    frames: int
    height: int
    width: int
    sampler: Sampler = "uniform"
    """``uniform``: frames spread over the video's duration; ``window``: consecutive frames."""
    fps: float | None = None
    """The frame rate within a clip when the dataset fixes it (a window at data.fps); None: the video's own."""
    keys: dict[str, str] = field(default_factory=lambda: {
        "frames": "data.num_frames", "size": "data.size", "sampler": "data.sampler", "fps": "data.fps"})
    """The config key behind each field, named in an error line."""


@dataclass(frozen=True)
class ModelInput:
    """What a model needs of its clips; every field at its default accepts anything."""

    min_frames: int = 1
    max_frames: int | None = None
    frames_multiple_of: int = 1
    min_size: int = 1
    size: int | None = None
    """Exactly this height and width (a network with a fixed-size layer); None: any size >= min_size."""
    sampler: Sampler | None = None
    """``window``: the model reads motion and needs consecutive frames; None: either."""
    fps: float | None = None
    """The frame rate the model was made for (pretrained weights); None: any."""
    layout: Literal["ntchw", "ncthw", "auto"] = "ntchw"
    """The batch layout ``forward`` reads: trainers give ``(N, T, C, H, W)`` (``ntchw``); ``auto``: the
    model finds the channel axis itself."""


def _spec(config: Any, method: str) -> Any:
    fn = getattr(config, method, None)
    return fn() if callable(fn) else None


def input_problems(data_config: Any, model_config: Any, model_name: str) -> list[str]:
    """One line per way the dataset's clips miss what the model needs (none when either is undeclared)."""
    clip: ClipSpec | None = _spec(data_config, "clip_spec")
    need: ModelInput | None = _spec(model_config, "model_input")
    if clip is None or need is None:
        return []
    k = clip.keys
    who = f"model.name: {model_name!r}"
    problems = []
    if clip.frames < need.min_frames:
        problems.append(f"{who} needs at least {need.min_frames} frames a clip; {k['frames']} gives {clip.frames}")
    if need.max_frames is not None and clip.frames > need.max_frames:
        problems.append(f"{who} takes at most {need.max_frames} frames a clip; {k['frames']} gives {clip.frames}")
    if clip.frames % need.frames_multiple_of:
        problems.append(f"{who} needs a multiple of {need.frames_multiple_of} frames a clip; {k['frames']} "
                        f"gives {clip.frames}")
    if need.size is not None and (clip.height, clip.width) != (need.size, need.size):
        problems.append(f"{who} needs {need.size} x {need.size} frames; {k['size']} gives "
                        f"{clip.height} x {clip.width}")
    elif min(clip.height, clip.width) < need.min_size:
        problems.append(f"{who} needs frames of at least {need.min_size} x {need.min_size}; {k['size']} gives "
                        f"{clip.height} x {clip.width}")
    if need.sampler is not None and clip.sampler != need.sampler:
        problems.append(f"{who} needs {SAMPLER_MEANING[need.sampler]} ({k['sampler']}: {need.sampler}); "
                        f"{k['sampler']} is {clip.sampler} ({SAMPLER_MEANING[clip.sampler]})")
    if need.fps is not None and clip.fps is not None and abs(clip.fps - need.fps) > 1e-6:
        problems.append(f"{who} was made for clips at {need.fps:g} fps; {k['fps']} is {clip.fps:g}")
    elif need.fps is not None and clip.fps is None and clip.sampler == "window":
        problems.append(f"{who} was made for clips at {need.fps:g} fps; set {k['fps']}: {need.fps:g} "
                        "(unset, each video's own rate is used)")
    if need.layout not in ("ntchw", "auto"):
        problems.append(f"{who} reads {need.layout} batches; trainers give (N, T, C, H, W) ones (ntchw)")
    return problems
