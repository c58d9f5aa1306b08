"""Input clips: layout checks, and uint8/float frames to the network's input range.

Only one chunk of a clip is ever converted to floating point: a 1000-frame
256x256 clip is 197 MB as uint8 and would be 786 MB as float32.
"""

from __future__ import annotations

import torch

from fvc_core.contract import UserError

# Where each layout keeps its colour channels.
CHANNEL_DIM = {"ntchw": 2, "ncthw": 1}
CHANNELS = 3
# Channels-last frames make the CPU (oneDNN) convolutions of this network about 1.5-2x faster
# (docs/naive_cnn.md); a module attribute so benchmarks can compare.
MEMORY_FORMAT = torch.channels_last


class ClipShapeError(UserError, ValueError):
    """A batch of clips whose shape or dtype does not fit the model's input layout."""


def fitting_layouts(shape: tuple[int, ...]) -> list[str]:
    return [name for name, dim in CHANNEL_DIM.items() if len(shape) == 5 and shape[dim] == CHANNELS]


def frames_view(x: torch.Tensor, layout: str) -> torch.Tensor:
    """A view ``(N, T, C, H, W)`` of a batch of clips in ``layout`` (or ``auto``), without copying."""
    shape = tuple(x.shape)
    if x.dim() != 5:
        raise ClipShapeError(
            f"naive_cnn: expected a batch of clips (N, T, C, H, W) or (N, C, T, H, W), got shape {shape}"
            + (" (add a batch dimension: x[None])" if x.dim() == 4 else "")
        )
    if x.dtype != torch.uint8 and not x.is_floating_point():
        raise ClipShapeError(f"naive_cnn: clips must be uint8 (0-255) or float (0-1), got {x.dtype}")
    fits = fitting_layouts(shape)
    if layout == "auto":
        if len(fits) > 1:
            raise ClipShapeError(
                f"naive_cnn: shape {shape} is ambiguous: both layouts fit ({', '.join(fits)}); set model.layout"
            )
        if not fits:
            raise ClipShapeError(
                f"naive_cnn: no layout fits shape {shape}: {CHANNELS} colour channels expected at "
                f"dim 2 (ntchw) or dim 1 (ncthw)"
            )
        layout = fits[0]
    elif layout not in CHANNEL_DIM:
        raise ClipShapeError(f"naive_cnn: unknown layout {layout!r} (valid: auto, ntchw, ncthw)")
    elif layout not in fits:
        others = f"layouts that fit: {', '.join(fits)}" if fits else "no layout fits"
        raise ClipShapeError(
            f"naive_cnn: layout {layout} expects {CHANNELS} channels at dim {CHANNEL_DIM[layout]}, "
            f"got shape {shape} ({others})"
        )
    frames = x if layout == "ntchw" else x.transpose(1, 2)
    n, t, _, h, w = frames.shape
    if n == 0 or t == 0:
        raise ClipShapeError(f"naive_cnn: empty batch or clip, shape {shape}")
    if h < 4 or w < 4:
        raise ClipShapeError(f"naive_cnn: frames of {h}x{w} are too small (two 2x poolings need at least 4x4)")
    return frames


def to_network_input(frames: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Frames (k, 3, H, W) as the network's input: [-1, 1], channels-last, in ``dtype``.

    uint8 is read as 0..255 and float as 0..1, so ``x.float() / 255`` scores like ``x``.
    """
    # Reorder while still uint8 (a quarter of the bytes); the conversions keep the order.
    frames = frames.contiguous(memory_format=MEMORY_FORMAT)
    if frames.dtype == torch.uint8:
        out = frames.to(dtype).mul_(2.0 / 255.0)
    else:
        # Not in place: a float clip may be the caller's own tensor (or need its gradient).
        out = frames.to(dtype).mul(2.0)
    return out.sub_(1.0)
