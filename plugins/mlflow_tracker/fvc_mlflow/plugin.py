"""Hook implementations. mlflow loads only when a tracker is built, so `fvc --help` stays fast."""

from __future__ import annotations

from fvc_core.contract import hookimpl
from fvc_mlflow.config import MlflowConfig


def build_mlflow_tracker(config: MlflowConfig):
    from fvc_mlflow.tracker import MlflowTracker

    return MlflowTracker(config)


@hookimpl
def register_trackers(register):
    register("mlflow", build_mlflow_tracker, config=MlflowConfig,
             description="MLflow: a parent run per fvc run, a nested run per fold, plots and artifacts")
