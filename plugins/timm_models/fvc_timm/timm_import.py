"""Importing timm, and what timm says of an architecture before any network is built.

timm imports torchvision (for ``FrozenBatchNorm2d`` and its image transforms), never torchvision's
compiled operators. Where those cannot load (a CUDA build of torchvision beside a CPU build of
torch, which is what a CPU machine gets from the package index: torchvision publishes its CPU builds
elsewhere), torchvision 0.28's ``import`` fails anyway: its ``_meta_registrations`` registers fake
kernels for ``torchvision::nms`` and ``::qnms`` without first checking that the operators exist
(every other operator there is guarded by ``extension._has_ops()``). When, and only when, the
compiled operators do not load, the two schemas are declared here, so that torchvision's pure-Python
parts import; calling ``torchvision.ops.nms`` then fails as before (no kernel), which timm never does.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Held for the life of the process: torch drops a Library's definitions when the object is collected.
_SCHEMAS: Any = None
_UNGUARDED = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}


def _torchvision_ops_load() -> bool:
    """Whether torchvision's compiled operators load (loading them, as torchvision itself would)."""
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # no torchvision: timm's own ImportError says so
    libs = [p for loc in spec.submodule_search_locations for p in Path(loc).glob("_C.*") if p.suffix in (".so", ".pyd")]
    if not libs:
        return False
    try:
        torch.ops.load_library(str(libs[0]))
    except OSError:
        return False
    return True


def _declare_unguarded_schemas() -> None:
    global _SCHEMAS
    import torch

    if _SCHEMAS is not None or "torchvision" in sys.modules or _torchvision_ops_load():
        return
    lib = torch.library.Library("torchvision", "DEF")
    for schema in _UNGUARDED.values():
        lib.define(schema)
    _SCHEMAS = lib


def import_timm() -> Any:
    """The ``timm`` module, importable beside a torchvision whose compiled operators do not load."""
    _declare_unguarded_schemas()
    with warnings.catch_warnings():
        # torchvision's "Failed to load image Python extension": its image decoders, unused here.
        warnings.filterwarnings("ignore", message=".*image Python extension.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="torchvision")
        import timm
    return timm


@dataclass(frozen=True)
class Architecture:
    """What timm's default pretrained config says of an architecture (no network built)."""

    name: str
    size: int | None
    """The input size its default weights were trained at."""
    fixed_size: bool
    """A network built for one input size (a vision transformer's position embeddings)."""
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@functools.lru_cache(maxsize=64)
def architecture(name: str) -> Architecture:
    """timm's word on ``name``: a ValueError in one line (with the closest names) when timm has none."""
    import difflib

    timm = import_timm()
    if not timm.is_model(name):
        close = difflib.get_close_matches(name, timm.list_models(), n=3, cutoff=0.6)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else " (timm.list_models() lists them)"
        raise ValueError(f"timm has no architecture {name!r}{hint}")
    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        return Architecture(name, None, False, IMAGENET_MEAN, IMAGENET_STD)
    size = cfg.input_size[-1] if cfg.input_size else None
    return Architecture(name, size, bool(cfg.fixed_input_size), tuple(cfg.mean or IMAGENET_MEAN),
                        tuple(cfg.std or IMAGENET_STD))
