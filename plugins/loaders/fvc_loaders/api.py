"""The public API of fvc-loaders for another dataset plugin: reuse the metadata dataset's table checks,
its PyAV clip reader and the dataset object itself instead of copying them.

::

    from fvc_loaders.api import ClipConfig, MetadataDataset, check_table, read_clip

Stable across minor versions of fvc-loaders; everything else in the package is internal. Light at
import (pydantic models and names only): polars and av load when a table is checked or a clip read,
so a plugin module importing this keeps ``fvc --help`` and ``fvc plugins`` instant. docs/loader.md,
"Reusing the metadata dataset", has a worked CSV dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fvc_loaders.config import ClipConfig, MetadataConfig
from fvc_loaders.dataset import MetadataDataset, check_table, load_table, missing_videos, read_table

if TYPE_CHECKING:
    import torch

__all__ = ["ClipConfig", "MetadataConfig", "MetadataDataset", "check_table", "load_table", "missing_videos",
           "read_clip", "read_table"]


def read_clip(path: str | Path, num_frames: int, size: int, *, augment_seed: int | None = None) -> torch.Tensor:
    """uint8 ``(num_frames, 3, size, size)``: frames sampled uniformly in time, letterboxed; a
    ``BadVideoError`` naming the file for a video that cannot be read (docs/loader.md)."""
    from fvc_loaders.reader import read_clip as _read_clip

    return _read_clip(path, num_frames, size, augment_seed=augment_seed)
