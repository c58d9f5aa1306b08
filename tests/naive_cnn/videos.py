"""Small real videos for the naive_cnn tests: encoded with PyAV, decoded with PyAV.

Each video is a textured scene that pans a few pixels per frame. Videos differ a lot in
global brightness and contrast (as real collections do: cameras, lighting). A fake is
the same kind of scene with a local manipulated patch: a square whose content is a
blurred, shifted copy of the scene, pasted with a visible seam, moving with the scene.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

SEAM_STEP = 0.3


def _smooth_texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A (size, size, 3) float texture in [0, 1] with structure at several scales."""
    out = np.zeros((size, size, 3))
    for cells in (4, 8, 16):
        coarse = rng.random((cells, cells, 3))
        reps = size // cells
        out += np.kron(coarse, np.ones((reps, reps, 1)))
    out /= 3
    # A box blur so the blocks do not give away edges of their own.
    k = 3
    padded = np.pad(out, ((k, k), (k, k), (0, 0)), mode="wrap")
    acc = np.zeros_like(out)
    for dy in range(-k, k + 1):
        for dx in range(-k, k + 1):
            acc += padded[k + dy : k + dy + size, k + dx : k + dx + size]
    return acc / (2 * k + 1) ** 2


def make_clip(seed: int, fake: bool, frames: int = 8, size: int = 48) -> np.ndarray:
    """(frames, size, size, 3) uint8."""
    rng = np.random.default_rng(seed)
    world = _smooth_texture(rng, 2 * size)
    contrast = rng.uniform(0.25, 1.0)
    brightness = rng.uniform(0.15, 0.85)
    vy, vx = rng.integers(-2, 3, size=2)
    patch = size // 3
    py, px = rng.integers(4, size - patch - 4, size=2)
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for t in range(frames):
        y0, x0 = size // 2 + vy * t, size // 2 + vx * t
        view = world[y0 : y0 + size, x0 : x0 + size].copy()
        if fake:
            # A copy of another part of the scene, flipped and brightened: a hard seam all round.
            src = world[y0 + py + 9 : y0 + py + 9 + patch, x0 + px + 7 : x0 + px + 7 + patch]
            view[py : py + patch, px : px + patch] = np.clip(src[::-1, ::-1] + SEAM_STEP, 0, 1)
        img = brightness + contrast * (view - 0.5)
        out[t] = np.clip(img * 255, 0, 255).astype(np.uint8)
    return out


def encode(path: Path, clip: np.ndarray, fps: int = 8) -> Path:
    """Write ``clip`` (T, H, W, 3) uint8 as an H.264 (or MPEG-4) file."""
    with av.open(str(path), "w") as container:
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = clip.shape[2], clip.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        if codec == "libx264":
            stream.options = {"crf": "12", "preset": "ultrafast"}
        for frame in clip:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def decode(path: Path) -> np.ndarray:
    """Every frame of ``path``: (T, H, W, 3) uint8."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def write_dataset(folder: Path, count: int, frames: int = 8, size: int = 48, seed: int = 0) -> list[tuple[Path, int]]:
    """``count`` videos, half real and half fake, as (path, label) pairs."""
    items = []
    for i in range(count):
        label = i % 2
        path = encode(
            folder / f"{'fake' if label else 'real'}_{i:03d}.mp4", make_clip(seed * 1000 + i, bool(label), frames, size)
        )
        items.append((path, label))
    return items
