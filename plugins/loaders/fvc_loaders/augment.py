"""Clip augmentation, reproducible from a seed: the same seed gives the same clip.

Parameters are drawn once per clip from ``numpy.random.default_rng(seed)``
(never a global generator, so worker processes and other code cannot shift
them) and applied alike to every frame, so motion between frames, which a
deepfake detector may rely on, is left as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

# Ranges kept mild: the artefacts that tell fakes apart are small.
BRIGHTNESS = (0.85, 1.15)
CONTRAST = (0.85, 1.15)
# A shift, not a crop resized back: resampling blurs exactly the blending seams and grain a detector
# must see. (Augmentation is a trade-off all the same: the quickstart turns it off, docs/loader.md.)
MAX_SHIFT = 0.08  # fraction of each side; the uncovered border is black, like letterbox padding
FLIP_PROBABILITY = 0.5


@dataclass(frozen=True)
class AugmentParams:
    """One clip's augmentation: a shift (pixels down, right), a flip, brightness, contrast."""

    flip: bool
    brightness: float
    contrast: float
    shift_y: int
    shift_x: int


def draw_params(seed: int, height: int, width: int) -> AugmentParams:
    """The parameters ``augment_clip`` uses for ``seed`` on frames of ``height`` x ``width``."""
    rng = np.random.default_rng(seed)
    flip = bool(rng.random() < FLIP_PROBABILITY)
    brightness = float(rng.uniform(*BRIGHTNESS))
    contrast = float(rng.uniform(*CONTRAST))
    max_y, max_x = int(height * MAX_SHIFT), int(width * MAX_SHIFT)
    shift_y = int(rng.integers(-max_y, max_y + 1))
    shift_x = int(rng.integers(-max_x, max_x + 1))
    return AugmentParams(flip, brightness, contrast, shift_y, shift_x)


def augment_clip(clip: torch.Tensor, seed: int) -> torch.Tensor:
    """``clip`` uint8 (T, 3, H, W), augmented with the parameters drawn from ``seed``: same shape and dtype.

    The same shift, flip, brightness and contrast apply to every frame. The input is not modified.
    """
    import torch

    if clip.ndim != 4 or clip.shape[1] != 3 or clip.dtype != torch.uint8:
        raise ValueError(f"augment_clip expects a uint8 (T, 3, H, W) clip, got {tuple(clip.shape)} {clip.dtype}")
    _, _, height, width = clip.shape
    p = draw_params(seed, height, width)

    # Shift and flip move uint8 pixels (a quarter of float32's bytes); the uncovered border is 0.
    # Written through a reversed view, ``out`` is laid out as flip(shift(clip)) was before.
    src = clip.detach().cpu().numpy()
    out = np.zeros(src.shape, dtype=np.uint8)
    target = out[..., ::-1] if p.flip else out
    dy, dx = p.shift_y, p.shift_x
    target[:, :, max(dy, 0) : height + min(dy, 0), max(dx, 0) : width + min(dx, 0)] = \
        src[:, :, max(-dy, 0) : height + min(-dy, 0), max(-dx, 0) : width + min(-dx, 0)]
    # Contrast about the clip's mean grey, one value for the whole clip. The mean is taken, as it always
    # was, by torch in float32 on the whole shifted, flipped clip (the same values in the same order), so a
    # seed keeps giving the clip it gave: an exact integer mean can differ in the last bit, which can move a
    # pixel by one level (tests/loaders/test_augment_equal.py compares with the former float code).
    mean = torch.from_numpy(out).to(torch.float32).mean()
    # Brightness and contrast then act on each pixel alone, the same for every pixel: the same float32 ops
    # and rounding on the 256 possible values give a lookup table, applied frame by frame in place.
    levels = torch.arange(256, dtype=torch.float32)
    levels = (levels - mean) * p.contrast + mean
    levels = levels * p.brightness
    lut = levels.round_().clamp_(0, 255).to(torch.uint8).numpy()
    for frame in out:  # a frame at a time: take's index buffer stays small
        np.take(lut, frame, out=frame, mode="clip")  # indices are 0..255: "clip" never clips, it skips a copy
    return torch.from_numpy(out)
