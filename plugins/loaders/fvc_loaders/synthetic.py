"""The ``synthetic`` dataset: generated real videos and manipulated copies of them, no download.

A "real" clip is a camera panning over a smooth random texture with soft
blobs drifting across it. Its "fake" is the very same clip with a face-sized
square (about a third of the frame side) replaced by a shifted, recoloured,
grainier piece of the texture, pasted with a dark blending seam and an opacity
that flickers from frame to frame: the kind of local, temporally unstable
artefact a face swap leaves. The real content is smooth everywhere, so the
seam and the grain are what a detector must find; they survive H.264 and
downscaling to 64 px (docs/data.md has the check).

The files are ordinary H.264 MP4s and ``metadata.parquet`` is an ordinary
table (``video_path`` relative, ``label`` real/fake, ``source_id``), read by
the ``metadata`` dataset's code: nothing bypasses decoding.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fvc_core.contract import ownership, write_atomic
from fvc_loaders.config import ClipConfig, MetadataConfig, SyntheticConfig
from fvc_loaders.dataset import MetadataDataset
from fvc_loaders.yuv import video_frame

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

# Bump when the pictures change, so that existing data is regenerated.
GENERATOR_VERSION = 2
FPS = 8
CRF = 20
# Strong enough to survive downscaling to 64 px and H.264, so that a short run learns it. With
# version 1 (grain 6, a two-pixel seam at 0.7), 2-fold runs of the quickstart stayed near chance
# after 8 epochs (test AUC 0.55, 0.62); with these values they reach 0.98 and 0.83 (docs/data.md).
GRAIN = 12.0
SEAM_WIDTH = 3
SEAM_DARKEN = 0.55
TABLE_NAME = "metadata.parquet"
PARAMS_NAME = "synthetic.json"


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cells: int) -> np.ndarray:
    """HxWx3 float noise in [-1, 1], smooth at the scale of ``height / cells`` (smoothstep interpolation)."""
    import numpy as np

    grid = rng.uniform(-1.0, 1.0, size=(cells + 1, cells + 1, 3))

    def axis(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = np.linspace(0.0, cells, n, endpoint=False)
        lo = np.floor(pos).astype(np.int64)
        frac = pos - lo
        return lo, lo + 1, frac * frac * (3.0 - 2.0 * frac)

    y0, y1, wy = axis(height)
    x0, x1, wx = axis(width)
    rows = grid[y0] * (1 - wy)[:, None, None] + grid[y1] * wy[:, None, None]
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def _texture(rng: np.random.Generator, side: int) -> np.ndarray:
    """A side x side x 3 float picture: a base colour with three octaves of smooth noise."""
    base = rng.uniform(70, 185, size=3)
    tex = base + 55 * _smooth_noise(rng, side, side, 3)
    tex += 30 * _smooth_noise(rng, side, side, 8)
    tex += 14 * _smooth_noise(rng, side, side, 20)
    return tex


def _track(rng: np.random.Generator, frames: int, low: float, high: float) -> np.ndarray:
    """``frames`` x 2 positions moving in a straight line between two random points in [low, high)."""
    import numpy as np

    start, end = rng.uniform(low, high, size=(2, 2))
    t = np.linspace(0.0, 1.0, frames)[:, None]
    return start + (end - start) * t


def real_frames(rng: np.random.Generator, frames: int, size: int) -> tuple[list[np.ndarray], dict[str, Any]]:
    """A panning shot of a textured scene with drifting blobs: ``frames`` float HxWx3 pictures.

    Also returns what a fake made from it needs (the canvas and the camera path).
    """
    import numpy as np

    margin = size // 2
    canvas = _texture(rng, size + 2 * margin)
    camera = np.rint(_track(rng, frames, 0, 2 * margin)).astype(np.int64)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    blobs = []
    for _ in range(int(rng.integers(3, 6))):
        blobs.append({
            "track": _track(rng, frames, 0.1 * size, 0.9 * size),
            "radius": rng.uniform(0.07, 0.18) * size,
            "colour": rng.uniform(0, 255, size=3),
            "alpha": rng.uniform(0.4, 0.8),
        })
    out = []
    for t in range(frames):
        cy, cx = camera[t]
        picture = canvas[cy : cy + size, cx : cx + size].copy()
        for blob in blobs:
            by, bx = blob["track"][t]
            g = blob["alpha"] * np.exp(-((yy - by) ** 2 + (xx - bx) ** 2) / (2 * blob["radius"] ** 2))
            picture = picture * (1 - g[..., None]) + blob["colour"] * g[..., None]
        out.append(picture)
    return out, {"canvas": canvas, "camera": camera, "margin": margin}


def fake_frames(rng: np.random.Generator, real: list[np.ndarray], scene: dict[str, Any]) -> list[np.ndarray]:
    """``real`` with a square region swapped for recoloured texture, a seam, and flickering opacity."""
    import numpy as np

    frames, size = len(real), real[0].shape[0]
    side = int(round(rng.uniform(0.28, 0.36) * size))
    # The "face" drifts a little, as faces do; the swapped content moves with it.
    low, high = 0.05 * size, 0.95 * size - side
    start = rng.uniform(low, high, size=2)
    end = np.clip(start + rng.uniform(-0.1, 0.1, size=2) * size, low, high)
    corner = np.rint(start + (end - start) * np.linspace(0, 1, frames)[:, None]).astype(np.int64)
    shift = rng.integers(-scene["margin"], scene["margin"] + 1, size=2)
    colour_shift = rng.choice([-1.0, 1.0], size=3) * rng.uniform(25, 50, size=3)
    gain = rng.uniform(0.75, 1.25)
    canvas, camera = scene["canvas"], scene["camera"]
    to_border = np.minimum(np.arange(side), np.arange(side)[::-1])
    edge = np.minimum.outer(to_border, to_border)  # pixels from the square's border
    out = []
    for t, picture in enumerate(real):
        y, x = corner[t]
        # The pasted texture comes from elsewhere in the same scene, like a face from another video.
        sy = int(np.clip(camera[t][0] + y + shift[0], 0, canvas.shape[0] - side))
        sx = int(np.clip(camera[t][1] + x + shift[1], 0, canvas.shape[1] - side))
        patch = (canvas[sy : sy + side, sx : sx + side] - 128) * gain + 128 + colour_shift
        opacity = rng.uniform(0.6, 0.95)  # flicker: a new blend weight every frame
        alpha = opacity * np.clip(edge / 1.5, 0.35, 1.0)[..., None]
        fake = picture.copy()
        region = fake[y : y + side, x : x + side]
        grain = rng.normal(0.0, GRAIN, size=patch.shape)  # re-encoded footage: a different noise texture
        blended = region * (1 - alpha) + (patch + grain) * alpha
        blended[edge < SEAM_WIDTH] *= SEAM_DARKEN  # the seam: a darker border
        fake[y : y + side, x : x + side] = blended
        out.append(fake)
    return out


def _encode(path: Path, pictures: list[np.ndarray]) -> None:
    """Write ``pictures`` as an H.264 MP4, atomically: a temporary name, renamed when complete."""
    import av

    def encode(tmp: Path) -> None:
        with av.open(str(tmp), "w", format="mp4") as out:
            stream = out.add_stream("libx264", rate=Fraction(FPS))
            stream.width = stream.height = pictures[0].shape[0]
            stream.pix_fmt = "yuv420p"
            # One thread: x264's output may depend on the thread count, and the data must not.
            stream.options = {"crf": str(CRF), "preset": "veryfast", "threads": "1", "x264-params": "asm=0"}
            for i, picture in enumerate(pictures):
                out.mux(stream.encode(video_frame(picture, i)))
            out.mux(stream.encode(None))

    write_atomic(path, encode, per_process=True, suffix=".mp4")


def _params(videos: int, frames: int, frame_size: int, seed: int) -> dict[str, int]:
    return {"generator": GENERATOR_VERSION, "videos": videos, "frames": frames, "frame_size": frame_size,
            "seed": seed}


def is_complete(root: str | Path, videos: int, frames: int, frame_size: int, seed: int) -> bool:
    """Whether ``root`` holds a finished generation with exactly these settings."""
    root = Path(root)
    try:
        stored = json.loads((root / PARAMS_NAME).read_text())
    except (OSError, ValueError):
        return False
    return (root / TABLE_NAME).is_file() and stored == _params(videos, frames, frame_size, seed)


def _generated_before_markers(root: Path) -> bool:
    """A folder generated before ``.fvc-owned`` existed: it holds this module's synthetic.json."""
    try:
        stored = json.loads((root / PARAMS_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(stored, dict) and "generator" in stored


def make_synthetic_dataset(
    root: str | Path, videos: int = 24, frames: int = 16, frame_size: int = 96, seed: int = 0
) -> Path:
    """Write ``videos`` real and ``videos`` fake clips under ``root`` unless already there; the table's path.

    Deterministic: the same arguments give the same table and the same decoded
    frames. The table is written last (and the videos under temporary names
    until complete), so an interrupted generation is redone, never half-used.
    ``root`` must be new, empty, or generated here before (fvc_core.ownership): a folder
    holding anything else is refused, never written into.
    """
    import numpy as np
    import polars as pl

    if frame_size % 2 or frame_size < 32:
        raise ValueError(f"frame_size must be even and at least 32, got {frame_size}")
    root = Path(root)
    table_path = root / TABLE_NAME
    if is_complete(root, videos, frames, frame_size, seed):
        return table_path
    # Only into a folder fvc made for generated data: never over a user's table or videos.
    ownership.claim(root, ownership.SYNTHETIC, legacy=_generated_before_markers,
                    way_out="data.root of the synthetic dataset must be a new or empty folder (or one it "
                            "generated); to train on your own videos use data.name: metadata")
    # A table from other settings must not pass for this generation if we are interrupted.
    table_path.unlink(missing_ok=True)
    (root / "real").mkdir(parents=True, exist_ok=True)
    (root / "fake").mkdir(parents=True, exist_ok=True)

    rows: dict[str, list[str]] = {"video_path": [], "label": [], "source_id": []}
    for i, child in enumerate(np.random.SeedSequence([seed, GENERATOR_VERSION]).spawn(videos)):
        # One generator per clip: clip i does not depend on how many come before it.
        rng = np.random.default_rng(child)
        source = f"src_{i:04d}"
        real, scene = real_frames(rng, frames, frame_size)
        _encode(root / "real" / f"{source}.mp4", real)
        _encode(root / "fake" / f"{source}.mp4", fake_frames(rng, real, scene))
        for label in ("real", "fake"):
            rows["video_path"].append(f"{label}/{source}.mp4")
            rows["label"].append(label)
            rows["source_id"].append(source)

    write_atomic(root / PARAMS_NAME, json.dumps(_params(videos, frames, frame_size, seed)), per_process=True)
    write_atomic(table_path, pl.DataFrame(rows).write_parquet, per_process=True)
    return table_path


class SyntheticDataset(MetadataDataset):
    """The ``metadata`` dataset over a generated table: generated on first use, then read like any table."""

    name = "synthetic"

    def __init__(self, config: SyntheticConfig):
        self.synthetic = config
        super().__init__(MetadataConfig(
            metadata=Path(config.root) / TABLE_NAME,
            group_column="source_id",
            **_clip_settings(config),
        ))

    def table(self) -> pl.DataFrame:
        c = self.synthetic
        make_synthetic_dataset(c.root, c.videos, c.frames, c.frame_size, c.seed)
        return super().table()

    def check(self) -> list[str]:
        """Nothing to check before the first run writes the videos; afterwards, the table as written."""
        if not Path(self.config.metadata).is_file():
            return []
        return super().check()

    def protocol(self) -> dict[str, Any]:
        c = self.synthetic
        return {**super().protocol(), "synthetic": _params(c.videos, c.frames, c.frame_size, c.seed)}


def _clip_settings(config: SyntheticConfig) -> dict[str, Any]:
    """The clip keys the user gave, plus this dataset's own defaults (smaller than a table's)."""
    keys = set(ClipConfig.model_fields) & (config.model_fields_set | {"num_frames", "size"})
    if config.sampler == "window":
        keys.discard("num_frames")  # the window's clip_len says it; num_frames would be refused
    return config.model_dump(include=keys)


def build_synthetic_dataset(config: SyntheticConfig) -> SyntheticDataset:
    return SyntheticDataset(config)
