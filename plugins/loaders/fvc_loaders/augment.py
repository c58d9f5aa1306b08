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
CROP_SIDE = (0.85, 1.0)  # fraction of each side kept before resizing back
FLIP_PROBABILITY = 0.5


@dataclass(frozen=True)
class AugmentParams:
    """One clip's augmentation: a crop (top, left, height, width) resized back, a flip, brightness, contrast."""

    flip: bool
    brightness: float
    contrast: float
    top: int
    left: int
    crop_height: int
    crop_width: int


def draw_params(seed: int, height: int, width: int) -> AugmentParams:
    """The parameters ``augment_clip`` uses for ``seed`` on frames of ``height`` x ``width``."""
    rng = np.random.default_rng(seed)
    flip = bool(rng.random() < FLIP_PROBABILITY)
    brightness = float(rng.uniform(*BRIGHTNESS))
    contrast = float(rng.uniform(*CONTRAST))
    side = float(rng.uniform(*CROP_SIDE))
    crop_h, crop_w = max(1, round(height * side)), max(1, round(width * side))
    top = int(rng.integers(0, height - crop_h + 1))
    left = int(rng.integers(0, width - crop_w + 1))
    return AugmentParams(flip, brightness, contrast, top, left, crop_h, crop_w)


def augment_clip(clip: torch.Tensor, seed: int) -> torch.Tensor:
    """``clip`` uint8 (T, 3, H, W), augmented with the parameters drawn from ``seed``: same shape and dtype.

    The same crop, flip, brightness and contrast apply to every frame. The input is not modified.
    """
    import torch
    import torch.nn.functional as F

    if clip.ndim != 4 or clip.shape[1] != 3 or clip.dtype != torch.uint8:
        raise ValueError(f"augment_clip expects a uint8 (T, 3, H, W) clip, got {tuple(clip.shape)} {clip.dtype}")
    _, _, height, width = clip.shape
    p = draw_params(seed, height, width)

    x = clip[:, :, p.top : p.top + p.crop_height, p.left : p.left + p.crop_width].float()
    if (p.crop_height, p.crop_width) != (height, width):
        x = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False)
    if p.flip:
        x = x.flip(-1)
    # Contrast about the clip's mean grey, one value for the whole clip.
    mean = x.mean()
    x = (x - mean) * p.contrast + mean
    x = x * p.brightness
    return x.round_().clamp_(0, 255).to(torch.uint8)
