"""The frames fvc's encoders are given (``fvc_loaders.yuv``): every byte defined, the colours right."""

from __future__ import annotations

import numpy as np
from fvc_loaders.prepare import Encoding, encode_pictures
from fvc_loaders.reader import iter_frames
from fvc_loaders.yuv import video_frame, yuv420p


def pictures(size: int, frames: int = 6) -> list[np.ndarray]:
    """Smooth colour waves drifting right: every channel, every level range, some motion."""
    y, x = np.mgrid[0:size, 0:size]
    base = np.stack([120 + 90 * np.sin(x / 9), 120 + 70 * np.cos(y / 7), 110 + 60 * np.sin((x + y) / 11)], 2)
    return [np.clip(np.roll(base, 3 * i, axis=1), 0, 255).astype(np.uint8) for i in range(frames)]


def test_a_frame_holds_the_planes_and_zeros_in_the_padding_of_every_row():
    picture = pictures(100, 1)[0]  # 50-byte chroma rows in 64-byte lines: 14 bytes of padding each
    frame = video_frame(picture, 7)
    planes = yuv420p(picture).reshape(-1)
    assert frame.pts == 7 and (frame.width, frame.height, frame.format.name) == (100, 100, "yuv420p")
    start = 0
    for plane in frame.planes:
        rows = np.frombuffer(bytes(plane), dtype=np.uint8).reshape(plane.height, plane.line_size)
        size = plane.width * plane.height
        assert np.array_equal(rows[:, : plane.width], planes[start : start + size].reshape(plane.height, -1))
        assert plane.line_size > plane.width and not rows[:, plane.width :].any()
        start += size
    assert start == planes.size


def test_an_encoded_clip_decodes_to_its_pictures_and_twice_to_the_same_file(tmp_path):
    clip = pictures(100)
    first, second = tmp_path / "a.mp4", tmp_path / "b.mp4"
    assert encode_pictures(first, 10, Encoding(size=100), clip) == len(clip)
    encode_pictures(second, 10, Encoding(size=100), clip)
    assert first.read_bytes() == second.read_bytes()
    decoded = list(iter_frames(first))
    assert len(decoded) == len(clip)
    for got, want in zip(decoded, clip, strict=True):
        # H.264 at crf 18 and 4:2:0 chroma: a few levels; swapped chroma or a wrong matrix is tens off.
        error = np.abs(got.astype(float) - want).mean(axis=(0, 1))
        assert error.max() < 4, error
