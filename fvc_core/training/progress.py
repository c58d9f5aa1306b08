"""Progress of a run: rich bars on a terminal, plain log lines in CI and pipes.

Metric lines are the console tracker's business; this shows where the run is and how long it takes.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class RunProgress:
    def __init__(self, console: Console, interactive: bool, folds: int, epochs: int):
        self.console = console
        self.interactive = interactive
        self.folds = folds
        self.epochs = epochs
        self._bars: Progress | None = None
        self._fold_task: TaskID | None = None
        self._epoch_task: TaskID | None = None
        self._step_task: TaskID | None = None

    def __enter__(self) -> RunProgress:
        if self.interactive:
            self._bars = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
            )
            self._bars.start()
            self._fold_task = self._bars.add_task("folds", total=self.folds, info="")
            self._epoch_task = self._bars.add_task("epochs", total=self.epochs, info="")
            self._step_task = self._bars.add_task("steps", total=None, info="")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bars is not None:
            self._bars.stop()
            self._bars = None

    def fold_done(self, fold: int, note: str = "") -> None:
        if self._bars is not None:
            self._bars.advance(self._fold_task)
        if note:
            self.console.print(f"fold {fold}: {note}")

    def start_fold(self, fold: int, sizes: dict[str, int], start_epoch: int, rates: str = "") -> None:
        parts = ", ".join(f"{n} {part}" for part, n in sizes.items())
        resumed = f", resuming at epoch {start_epoch}" if start_epoch > 1 else ""
        # The peak rates are printed because a backbone rate 100x below the head's is easy to get
        # without asking for it and then looks like a model that cannot learn.
        rates = f"; {rates}" if rates else ""
        self.console.print(f"fold {fold} of {self.folds}: {parts} videos{resumed}{rates}", highlight=False)
        if self._bars is not None:
            self._bars.update(self._fold_task, description=f"fold {fold}")
            self._bars.reset(self._epoch_task, total=self.epochs, completed=start_epoch - 1)

    def start_refit(self, fold: int, videos: int, epochs: int, start_epoch: int) -> None:
        resumed = f", resuming at epoch {start_epoch}" if start_epoch > 1 else ""
        self.console.print(f"fold {fold}: refit on train + val ({videos} videos) for the {epochs} epoch(s) the "
                           f"validation part chose{resumed}", highlight=False)
        if self._bars is not None:
            self._bars.update(self._fold_task, description=f"fold {fold} refit")
            self._bars.reset(self._epoch_task, total=epochs, completed=start_epoch - 1)

    def start_pass(self, label: str, batches: int) -> None:
        if self._bars is not None:
            self._bars.reset(self._step_task, total=batches, description=label, info="")

    def step(self, loss: float | None = None) -> None:
        if self._bars is not None:
            info = f"loss {loss:.4f}" if loss is not None else ""
            self._bars.update(self._step_task, advance=1, info=info)

    def end_epoch(self, fold: int, epoch: int, seconds: float, data_wait: float, steps: int,
                  rates: dict[str, float] | None = None, of: int | None = None, phase: str = "") -> None:
        """``rates``: the learning rates at the end of the epoch, by history key (lr, lr_backbone);
        ``of``: the epochs of this phase (default: trainer.epochs); ``phase``: shown before "epoch"."""
        shown = ", ".join(f"{name} {value:.3g}" for name, value in (rates or {}).items())
        if self._bars is not None:
            self._bars.advance(self._epoch_task)
            if shown:
                self._bars.update(self._epoch_task, info=shown)
        else:
            share = data_wait / seconds if seconds > 0 else 0.0
            shown = f", {shown}" if shown else ""
            phase = f"{phase} " if phase else ""
            self.console.print(f"fold {fold} {phase}epoch {epoch}/{of or self.epochs}: {steps} optimiser steps "
                               f"in {seconds:.1f}s ({share:.0%} waiting for data){shown}", highlight=False)
