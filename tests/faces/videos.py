"""Test videos with a real face: scikit-image's astronaut photograph (Eileen Collins), moved and scaled.

``face_patch()`` is the head cut out of the photograph; ``face_video`` pastes it (and optionally a mirrored
second head) on a plain textured background, at a position and size that change from frame to frame, and
returns where the face box is in each frame, so a test can check that a crop holds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import av
import numpy as np

# The astronaut's head: rows 30-200, columns 140-310 of the 512 x 512 photograph. Her face (OpenCV's
# cascade box on the full photograph: x 177-272, y 66-160) lies at these shares of the patch.
PATCH = (slice(30, 200), slice(140, 310))
FACE_IN_PATCH = (37 / 170, 36 / 170, 132 / 170, 130 / 170)  # x0, y0, x1, y1


def face_patch() -> np.ndarray:
    from skimage.data import astronaut

    return np.ascontiguousarray(astronaut()[PATCH])


def background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth colour gradient with mild noise: no face-like pattern for the cascade."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([60 + 80 * x / width, 90 + 40 * y / height, 140 - 60 * x / width], axis=2)
    return np.clip(base + rng.normal(0, 4, base.shape), 0, 255).astype(np.uint8)


Placement = tuple[float, float, float]  # patch centre x, centre y, patch side (pixels)


def _resize(image: np.ndarray, side: int) -> np.ndarray:
    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
    return frame.reformat(width=side, height=side, format="rgb24").to_ndarray()


def paste(canvas: np.ndarray, patch: np.ndarray, placement: Placement) -> tuple[float, float, float, float]:
    """Paste ``patch`` scaled to its placement; the face box it puts on the canvas (x0, y0, x1, y1)."""
    cx, cy, side = placement
    side = int(round(side))
    scaled = _resize(patch, side)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    canvas[y0 : y0 + side, x0 : x0 + side] = scaled
    fx0, fy0, fx1, fy1 = FACE_IN_PATCH
    return x0 + fx0 * side, y0 + fy0 * side, x0 + fx1 * side, y0 + fy1 * side


def face_video(
    path: Path,
    placements: Sequence[Sequence[Placement]],
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 10,
    edit: Callable[[np.ndarray, int], None] | None = None,
) -> list[list[tuple[float, float, float, float]]]:
    """Write an H.264 video whose frame i holds a head at each placement of ``placements[i]`` (the second
    one mirrored); the face boxes per frame. ``edit(frame, i)`` may change the frame before encoding."""
    patch = face_patch()
    patches = [patch, np.ascontiguousarray(patch[:, ::-1])]
    path.parent.mkdir(parents=True, exist_ok=True)
    boxes = []
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "18", "preset": "veryfast"}
        for i, frame_placements in enumerate(placements):
            canvas = background(width, height)
            boxes.append([paste(canvas, patches[k % 2], p) for k, p in enumerate(frame_placements)])
            if edit is not None:
                edit(canvas, i)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")))
        out.mux(stream.encode(None))
    return boxes


def moving(frames: int, start: Placement, end: Placement) -> list[list[Placement]]:
    """One head moving (and growing or shrinking) in a straight line from ``start`` to ``end``."""
    t = np.linspace(0, 1, frames)
    return [[tuple(float(a + (b - a) * s) for a, b in zip(start, end, strict=True))] for s in t]
