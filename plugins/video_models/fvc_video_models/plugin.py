"""Hook implementations: registers the ``r2plus1d``, ``r3d`` and ``mc3`` models. Imports no torch."""

from __future__ import annotations

from typing import Any

from fvc_core.contract import hookimpl
from fvc_video_models.config import VideoModelConfig


def _factory(arch: str) -> Any:
    def build(config: VideoModelConfig) -> Any:
        from fvc_video_models.model import VideoClassifier

        return VideoClassifier.from_config(arch, config)

    return build


@hookimpl
def register_models(register):
    register("r2plus1d", _factory("r2plus1d"), config=VideoModelConfig,
             description="R(2+1)D ResNet: 2D spatial then 1D temporal convolutions, on consecutive frames")
    register("r3d", _factory("r3d"), config=VideoModelConfig,
             description="3D ResNet: full 3x3x3 convolutions, on consecutive frames")
    register("mc3", _factory("mc3"), config=VideoModelConfig,
             description="mixed convolutions: 3D in the first stage, 2D after, on consecutive frames")
