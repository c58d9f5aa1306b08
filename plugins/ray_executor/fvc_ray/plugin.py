"""fvc-ray's hooks: the ``ray`` executor. Ray itself is imported only when a run uses it."""

from __future__ import annotations

from fvc_core.contract import hookimpl
from fvc_ray.config import RayExecutorConfig


def build_ray(config: RayExecutorConfig):
    from fvc_ray.executor import RayExecutor

    return RayExecutor(config)


@hookimpl
def register_executors(register):
    register("ray", build_ray, config=RayExecutorConfig,
             description="the folds as Ray tasks, side by side on this machine or a Ray cluster")
