"""The console tracker: one line per epoch and per fold. Built in, registered like any plugin."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from fvc_core.hookspecs import hookimpl
from fvc_core.tracking.events import FoldResult, RunInfo, Tracker, TrackerConfig

_SHOWN = ("accuracy", "f1_score", "roc_auc", "average_precision", "eer", "frame_roc_auc")


class ConsoleConfig(TrackerConfig):
    background: Literal[False] = Field(
        False, description="Always false: its lines belong beside the training progress, in that process")


class ConsoleTracker(Tracker):
    name = "console"

    def __init__(self, config: ConsoleConfig):
        from fvc_core.console import get_console

        self.console = get_console()

    def start_run(self, run: RunInfo) -> None:
        verb = "resuming" if run.resumed else "starting"
        self.console.print(f"[bold]{verb}[/] {run.experiment}: {run.model_name}, {run.folds} folds, "
                           f"config {run.config_hash} -> {run.run_dir}")

    def log_epoch(self, fold: int, epoch: int, metrics: dict[str, float], step: int) -> None:
        shown = "  ".join(f"{k} {_fmt(v)}" for k, v in metrics.items() if k != "epoch")
        self.console.print(f"fold {fold} epoch {epoch}: {shown}")

    def end_fold(self, result: FoldResult) -> None:
        shown = "  ".join(f"{k} {_fmt(result.metrics[k])}" for k in _SHOWN if k in result.metrics)
        best = f" (best epoch {result.best_epoch})" if result.best_epoch is not None else ""
        self.console.print(f"[bold]fold {result.fold} test[/]{best}: {shown}")

    def fail_run(self, run: RunInfo, error: str) -> None:
        from rich.markup import escape  # an error's text is not markup ("[/__w/.../pair.cc:553]")

        self.console.print(f"[red]run {run.run_id} stopped:[/] {escape(error)}")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1e-2 and value != 0 else f"{value:.4f}"
    return str(value)


@hookimpl
def register_trackers(register):
    register("console", ConsoleTracker, config=ConsoleConfig, description="epoch and fold lines on the terminal")
