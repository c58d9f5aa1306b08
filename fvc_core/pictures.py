"""Picture geometry every frame decoder shares, so that two decoders give pictures of one size."""

from __future__ import annotations


def fit(width: float, height: float, size: int) -> tuple[int, int]:
    """The (width, height) of a ``width`` x ``height`` picture scaled to fit in ``size`` x ``size``."""
    if width <= 0 or height <= 0:
        raise ValueError(f"cannot letterbox a {width}x{height} picture")
    scale = size / max(width, height)
    return max(1, min(size, round(width * scale))), max(1, min(size, round(height * scale)))
