"""RGB pictures as the yuv420p frames the H.264 encoder takes, every byte of them defined, so that one
picture is always one frame and one file.

Handed an ``rgb24`` frame, PyAV converts it with swscale into a frame of its own whose row padding is left
as the allocator found it. Encoded that way, the same clip gave different files (measured: 3 of 40 encodes
in one process whose heap held old data; 12 copies of one video, 3 different face crops at ``--size 100``).
Here the RGB to YUV conversion is done in numpy (BT.601, limited range, as the reader decodes) and the
planes are written whole, padding zeroed: nothing the encoder is handed depends on what memory held
before. Every encoder of fvc's own videos builds its frames here: the synthetic dataset, ``fvc prepare``'s
copies and its face crops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import av
    import numpy as np


def yuv420p(rgb: np.ndarray) -> np.ndarray:
    """RGB (H x W x 3, uint8 or float 0-255; H and W even) as a planar yuv420p array (BT.601, limited range,
    the matrix the reader's swscale decodes with); chroma is the mean of each 2 x 2 block."""
    import numpy as np

    rgb = np.clip(np.asarray(rgb, dtype=np.float64), 0, 255)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16 + 0.256788 * r + 0.504129 * g + 0.097906 * b
    u = 128 - 0.148223 * r - 0.290993 * g + 0.439216 * b
    v = 128 + 0.439216 * r - 0.367788 * g - 0.071427 * b
    h, w = y.shape

    def half(c: np.ndarray) -> np.ndarray:
        return c.reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3)).ravel()

    # The three planes one after another, as rows of w bytes (PyAV's layout for yuv420p arrays).
    planes = np.concatenate([y.ravel(), half(u), half(v)]).reshape(h * 3 // 2, w)
    return np.clip(np.rint(planes), 0, 255).astype(np.uint8)


def video_frame(rgb: np.ndarray, pts: int) -> av.VideoFrame:
    """The encoder's frame ``pts`` of an RGB picture (H and W even): the same picture gives the same frame,
    bit for bit, the padding at the end of each row (zeros) included."""
    import av
    import numpy as np

    planes = yuv420p(rgb)
    h, w = planes.shape[0] * 2 // 3, planes.shape[1]
    flat = planes.reshape(-1)
    chroma = (h // 2) * (w // 2)
    frame = av.VideoFrame(w, h, "yuv420p")
    for plane, data in zip(frame.planes, (flat[: h * w], flat[h * w : h * w + chroma], flat[h * w + chroma :]),
                           strict=True):
        rows = np.zeros((plane.height, plane.line_size), dtype=np.uint8)
        rows[:, : plane.width] = data.reshape(plane.height, plane.width)
        plane.update(rows)
    frame.pts = pts
    return frame
