"""What trackers receive, and the base class they implement.

Light on purpose (no torch): trackers and the CLI import it at start-up.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from fvc_core.tracking.metric_names import TEST_METRIC_NAMES, test_metric_name

__all__ = ["INTERRUPTED", "KILLED", "TEST_METRIC_NAMES", "Evaluation", "FoldResult", "RunInfo", "RunSummary", "Tracker",
           "TrackerConfig", "history_steps", "selected_value", "test_metric_name"]


# The ``error`` of ``fail_run`` when the run did not fail of itself.
INTERRUPTED = "interrupted"
"""Ctrl-C (SIGINT): the run stopped at the user's request; ``fvc run`` again resumes it."""
KILLED = "killed"
"""The training process ended without a word (SIGKILL, out of memory); background trackers report this."""


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
    sweep: dict[str, Any] | None = None
    """A point of `fvc sweep`: ``name``, ``point`` (its id, the run folder's name), ``values`` (the
    varied keys), ``metric`` (what ranks the points), ``last`` (no point after it); None otherwise."""
    earlier_config_hashes: tuple[str, ...] = ()
    """Hashes an older fvc gave this same experiment (keys added since, at their defaults;
    fvc_core.config.identity): checkpoints in the run folder written under them are this run's."""


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
    repeat: int = 0
    """Repeated cross-validation (trainer.repeats > 1): the repeat this fold belongs to. ``fold`` is
    then unique across the run, repeat * k + the fold's index within its repeat, so trackers that key
    on it keep working; ``fold_in_repeat`` is that index."""
    fold_in_repeat: int | None = None


@dataclass
class RunSummary:
    run: RunInfo
    folds: list[FoldResult]
    mean: dict[str, float]
    std: dict[str, float]
    summary_path: Path | None = None
    skipped_videos: list[dict[str, str]] = field(default_factory=list)
    """Videos left out under ``on_bad_video: skip``: path and reason."""
    repeats: int = 1
    ci95: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Repeated cross-validation only: metric -> (low, high) of the 95 % confidence interval of the
    mean over all repeats x folds (corrected for the folds' overlapping training parts)."""


@dataclass
class Evaluation:
    """A finished run's fold models scored on another table (``fvc evaluate``), once its files are written."""

    name: str
    """``--name``: the results are in ``<run_dir>/eval/<name>/``."""
    metrics: dict[str, Any]
    """eval/<name>/metrics.json's content: ``overall``, ``per_method`` (each ``fold_mean_score``,
    ``folds`` and ``over_folds``), ``protocol``, ``n_videos``, ``skipped``."""
    eval_dir: Path
    protocol: dict[str, Any] = field(default_factory=dict)
    """How it was measured: the table and its layout, preprocessing, clips, aggregation, folds."""


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
        """All folds finished: the cross-fold summary.

        ``summary.folds`` holds every fold, those finished by an earlier ``fvc run`` of the run too
        (metrics, history, predictions_path, fold_dir): the core does not replay ``end_fold`` for
        them, so a tracker added to a finished or resumed run, or switched off meanwhile, catches up
        here by recording the folds it has not (as the mlflow and duckdb trackers do)."""

    def fail_run(self, run: RunInfo, error: str) -> None:
        """The run stopped: ``error`` is INTERRUPTED, KILLED, or ``Type: message`` of what failed."""

    def log_evaluation(self, run: RunInfo, evaluation: Evaluation) -> None:
        """``fvc evaluate`` scored another table with the finished run ``run`` (told after the run, in
        another process: no ``start_run`` comes first). Optional; ignored by default."""


def history_steps(result: FoldResult, config: Mapping[str, Any]) -> dict[int, int]:
    """Epoch -> the optimiser step at its end, for the epochs of a fold a tracker catches up from its files.

    A history row's own ``step`` where it has one. Otherwise the supervised trainer's pace, the same
    every epoch: ceil(ceil(training videos / batch_size) / grad_accum) steps, the training videos
    being the ``train`` rows of the fold's split.parquet. An epoch whose step cannot be known is left
    out (the tracker records no step rather than a guessed one).
    """
    steps: dict[int, int] = {}
    for index, row in enumerate(result.history):
        epoch, step = row.get("epoch", index), row.get("step")
        if isinstance(step, (int, float)) and not isinstance(step, bool) and math.isfinite(step):
            steps[int(epoch)] = int(step)
    pace = _steps_per_epoch(result, config)
    if pace is not None:
        for index, row in enumerate(result.history):
            epoch = row.get("epoch", index)
            if isinstance(epoch, (int, float)) and math.isfinite(epoch):
                steps.setdefault(int(epoch), int(epoch) * pace)
    return steps


def _steps_per_epoch(result: FoldResult, config: Mapping[str, Any]) -> int | None:
    trainer = config.get("trainer") if isinstance(config, Mapping) else None
    if not isinstance(trainer, Mapping) or trainer.get("name") != "supervised":
        return None
    batch_size, grad_accum = trainer.get("batch_size"), trainer.get("grad_accum")
    split = Path(result.fold_dir) / "split.parquet"
    if not (isinstance(batch_size, int) and isinstance(grad_accum, int) and batch_size > 0 and grad_accum > 0
            and split.is_file()):
        return None
    import polars as pl

    try:
        train = pl.scan_parquet(split).filter(pl.col("part") == "train").select(pl.len()).collect().item()
    except Exception:  # a split written by another trainer, or damaged: no pace rather than a wrong one
        return None
    return math.ceil(math.ceil(train / batch_size) / grad_accum) if train else None


def selected_value(result: FoldResult, metric: str) -> float:
    """The validation ``metric`` of the epoch that chose the fold's model (its best epoch); NaN if unknown."""
    for row in result.history:
        if result.best_epoch is not None and row.get("epoch") == result.best_epoch:
            value = row.get(metric)
            return float(value) if isinstance(value, (int, float)) else math.nan
    return math.nan
