"""What trackers receive, and the base class they implement.

Light on purpose (no torch): trackers and the CLI import it at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

# Test metrics under the names the seed's notebook and queries use (test_f1, test_auc...), so
# every tracker reports them alike: ``SELECT fold, AVG(test_f1) ... FROM results``.
TEST_METRIC_NAMES = {
    "accuracy": "test_accuracy",
    "precision": "test_precision",
    "recall": "test_recall",
    "f1_score": "test_f1",
    "roc_auc": "test_auc",
    "average_precision": "test_ap",
    "eer": "test_eer",
}


# The ``error`` of ``fail_run`` when the run did not fail of itself.
INTERRUPTED = "interrupted"
"""Ctrl-C (SIGINT): the run stopped at the user's request; ``fvc run`` again resumes it."""
KILLED = "killed"
"""The training process ended without a word (SIGKILL, out of memory); background trackers report this."""


def test_metric_name(key: str) -> str:
    """The tracked name of a test metric from metrics.json: ``f1_score`` -> ``test_f1``."""
    return TEST_METRIC_NAMES.get(key, key if key.startswith("test_") else f"test_{key}")


class TrackerConfig(BaseModel):
    """Base for a tracker's own section of experiment.yaml."""

    model_config = ConfigDict(extra="forbid")

    fail_fast: bool = False
    """Check the tracker before training and stop with an error if it fails;
    by default a failing tracker is reported once and the run goes on."""

    background: bool = False
    """Build and call the tracker in a child process, so its imports, network and disk writes
    overlap training; the run waits for it only at its end. A fail_fast tracker stays in the
    training process. Needs a factory and config that pickle (module-level, not a lambda)."""


@dataclass
class RunInfo:
    experiment: str
    run_id: str
    """Stable for a config and output folder: a resumed run has the same id."""
    config: dict[str, Any]
    """The resolved config, as written to config.yaml."""
    config_hash: str
    model_name: str
    run_dir: Path
    """``<output_dir>/<model_name>``: the run's outputs; trackers may keep state here."""
    folds: int
    protocol: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    resumed: bool = False


@dataclass
class FoldResult:
    fold: int
    metrics: dict[str, float]
    """Test metrics (accuracy, precision, recall, f1_score, roc_auc, average_precision, eer...)."""
    fold_dir: Path
    predictions_path: Path
    """predictions.parquet: video_path, label, score, fold."""
    history: list[dict[str, float]] = field(default_factory=list)
    """One dict per epoch: epoch, train_loss, val_loss, val_* metrics, lr."""
    artifacts: dict[str, Path] = field(default_factory=dict)
    """Name -> file: model.pt, metrics.json, history.json, split.parquet..."""
    best_epoch: int | None = None


@dataclass
class RunSummary:
    run: RunInfo
    folds: list[FoldResult]
    mean: dict[str, float]
    std: dict[str, float]
    summary_path: Path | None = None
    skipped_videos: list[dict[str, str]] = field(default_factory=list)
    """Videos left out under ``on_bad_video: skip``: path and reason."""


class Tracker:
    """Receives a run's events. Override what you need; the rest do nothing.

    Methods may raise: the core catches, names the tracker in one warning and
    stops calling it, unless its config says ``fail_fast``.
    """

    name: str = "tracker"

    def check(self, run: RunInfo) -> None:
        """Fail early (raise) when the tracker cannot work: server down, read-only path.

        Called only with ``fail_fast: true``, before training and before ``start_run``; the run
        folder exists by then, so default locations inside it can be probed too."""

    def start_run(self, run: RunInfo) -> None:
        """A run starts, or resumes (``run.resumed``)."""

    def log_epoch(self, fold: int, epoch: int, metrics: dict[str, float], step: int) -> None:
        """Metrics of one epoch of one fold (train_loss, val_loss, val_auc, lr...)."""

    def end_fold(self, result: FoldResult) -> None:
        """A fold finished and its outputs are on disk."""

    def end_run(self, summary: RunSummary) -> None:
        """All folds finished: the cross-fold summary."""

    def fail_run(self, run: RunInfo, error: str) -> None:
        """The run stopped: ``error`` is INTERRUPTED, KILLED, or ``Type: message`` of what failed."""
