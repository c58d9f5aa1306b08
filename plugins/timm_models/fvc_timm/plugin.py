"""Hook implementations: registers ``timm`` (any timm architecture) and the named baselines
``xception``, ``efficientnet_b4`` and ``clip_vit_b16``. Imports neither torch nor timm."""

from __future__ import annotations

from typing import Any

from fvc_core.contract import hookimpl
from fvc_timm.config import PRESETS, TimmConfig, TimmModelConfig


def build_timm_model(config: TimmModelConfig) -> Any:
    """The factory of every model here: a ``TimmDetector`` built from the validated config."""
    from fvc_timm.model import TimmDetector

    return TimmDetector.from_config(config)


@hookimpl
def register_models(register):
    register("timm", build_timm_model, config=TimmConfig,
             description="any timm image backbone by name (arch:), scoring each frame; chunked, memory-bounded")
    for name, config in PRESETS.items():
        register(name, build_timm_model, config=config,
                 description=f"{config.__doc__.splitlines()[0]} (timm {config.ARCH})")
