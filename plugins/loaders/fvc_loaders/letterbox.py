"""Letterboxing: fit a picture into a ``size`` x ``size`` square, aspect kept, centred, black bars.

Decoded frames are resized and converted to RGB by FFmpeg's swscale in one call
(``VideoReformatter.reformat``), at the small size, so the full-size RGB picture
is never made; only the padding happens in numpy.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
from av.video.reformatter import VideoReformatter

from fvc_core.contract import fit

# Limited-range luma (16..235) to full-range grey; see FrameConverter._grey.
_LIMITED_TO_FULL = np.clip(np.round((np.arange(256) - 16) * 255 / 219), 0, 255).astype(np.uint8)


def pad(image: np.ndarray, size: int) -> np.ndarray:
    """``image`` (h, w, 3) centred on a black ``size`` x ``size`` canvas."""
    h, w = image.shape[:2]
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - h) // 2, (size - w) // 2
    canvas[top : top + h, left : left + w] = image
    return canvas


def clip_of(pictures: list[np.ndarray], size: int) -> np.ndarray:
    """(T, 3, size, size) uint8 from (h, w, 3) pictures, each centred on black: one copy per frame."""
    out = np.zeros((len(pictures), 3, size, size), dtype=np.uint8)
    for i, image in enumerate(pictures):
        h, w = image.shape[:2]
        top, left = (size - h) // 2, (size - w) // 2
        out[i, :, top : top + h, left : left + w] = image.transpose(2, 0, 1)
    return out


def letterbox(frame: np.ndarray, size: int) -> np.ndarray:
    """An RGB picture (H, W, 3) uint8 letterboxed to (size, size, 3) uint8, with the reader's scaler."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"letterbox expects an (H, W, 3) uint8 array, got {frame.shape} {frame.dtype}")
    w, h = fit(frame.shape[1], frame.shape[0], size)
    if (w, h) == (frame.shape[1], frame.shape[0]):
        return pad(frame, size)
    picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
    return pad(picture.reformat(width=w, height=h, format="rgb24").to_ndarray(), size)


class FrameConverter:
    """Turns decoded frames into upright, letterboxed RGB arrays.

    One per open video: it keeps a swscale context, which swscale reuses while
    the frame geometry stays the same (re-creating it per frame costs more than
    the scaling itself at small sizes).
    """

    def __init__(self, size: int, sample_aspect_ratio: Fraction | None = None, *, bars: bool = True):
        self.size = size
        # bars=False: the fitted picture alone (face detection wants the frame, not the square).
        self.bars = bars
        # Anamorphic video (non-square pixels) is shown at its display aspect.
        sar = sample_aspect_ratio
        self.sar = float(sar) if sar and sar > 0 and sar != 1 else 1.0
        self._reformatter = VideoReformatter()

    def shown_size(self, frame: av.VideoFrame) -> tuple[float, float]:
        """(width, height) of ``frame`` as displayed: pixel aspect applied, upright."""
        w, h = frame.width * self.sar, frame.height
        return (h, w) if quarter_turns(frame.rotation) % 2 else (w, h)

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        """(size, size, 3) uint8: the frame upright and letterboxed; with bars=False the fitted picture alone."""
        image = self.picture(frame)
        return pad(image, self.size) if self.bars else np.ascontiguousarray(image)

    def picture(self, frame: av.VideoFrame) -> np.ndarray:
        """(h, w, 3) uint8: the frame upright, scaled to fit ``size`` x ``size``, not yet padded."""
        turns = quarter_turns(frame.rotation)
        shown_w, shown_h = frame.width * self.sar, frame.height
        if turns % 2:
            shown_w, shown_h = shown_h, shown_w
        w, h = fit(shown_w, shown_h, self.size)
        # Scale in the stored orientation, then turn the small picture upright.
        stored_w, stored_h = (h, w) if turns % 2 else (w, h)
        if frame.format.name.startswith("gray"):
            image = self._grey(frame, stored_w, stored_h)
        else:
            image = self._reformatter.reformat(frame, stored_w, stored_h, "rgb24").to_ndarray()
        if turns:
            image = np.rot90(image, k=turns)
        return image

    def _grey(self, frame: av.VideoFrame, width: int, height: int) -> np.ndarray:
        # swscale ignores the colour range of grey input and treats it as full
        # range, but video codecs store grey as limited-range luma (16..235)
        # unless the stream says otherwise: expand it here, as a YUV frame would be.
        luma = self._reformatter.reformat(frame, width, height, "gray").to_ndarray()
        if frame.color_range != 2:  # AVCOL_RANGE_JPEG: already full range
            luma = _LIMITED_TO_FULL[luma]
        return np.repeat(luma[:, :, None], 3, axis=2)


def quarter_turns(rotation: float) -> int:
    """Counter-clockwise quarter turns (0-3) that show a frame upright, from its display-matrix rotation.

    FFmpeg reports the angle by which the display matrix turns the stored
    picture counter-clockwise; ``np.rot90`` turns counter-clockwise too.
    """
    return round((rotation or 0) / 90) % 4
