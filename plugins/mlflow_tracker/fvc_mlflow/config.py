"""The ``mlflow:`` section of experiment.yaml."""

from __future__ import annotations

from pydantic import Field

from fvc_core.contract import TrackerConfig


class MlflowConfig(TrackerConfig):
    background: bool = Field(
        True,
        description="Log from a child process, so mlflow's import, store access, plots and uploads overlap "
        "training instead of pausing it. false: from the training process (as with fail_fast)",
    )
    tracking_uri: str | None = Field(
        None,
        description="Where runs go (http://127.0.0.1:5000, sqlite:///abs/path.db...). Default: "
        "$MLFLOW_TRACKING_URI, else sqlite:///<output_dir>/mlflow.db",
    )
    experiment_name: str | None = Field(None, description="MLflow experiment; default: the config's `experiment`")
    artifact_location: str | None = Field(
        None,
        description="Artifact root of a newly created MLflow experiment; default with the local store: "
        "<output_dir>/mlartifacts, otherwise the server's choice",
    )
    log_model_checkpoint: bool = Field(False, description="Upload each fold's model.pt as an artifact")
    log_plots: bool = Field(True, description="ROC curves, confusion matrices and training curves as PNG")
    flush_every_s: float = Field(
        10.0, ge=0,
        description="Epoch metrics are sent at most this often, and at every fold's end: with epochs of seconds a "
        "request per epoch costs more than it shows. 0: every epoch as it ends",
    )
    probe_timeout_s: int = Field(
        5, ge=1, description="HTTP timeout (seconds, no retries) when probing a tracking server before use"
    )
