"""Calling several trackers as one: a tracker that raises is named in one warning and switched off.

Shared by the training process (build.py) and the background trackers' child process
(background.py), which both import it and neither of which it imports, so the dependency
between those two goes one way.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fvc_core.errors import UserError, one_line
from fvc_core.tracking.events import Evaluation, FoldResult, RunInfo, RunSummary, Tracker

if TYPE_CHECKING:
    from rich.console import Console


def could_not_start(name: str, exc: BaseException) -> str:
    """The warning for a tracker whose factory raised: the run goes on without it."""
    return f"tracker {name!r} could not start: {one_line(exc)}; running without it"


class TrackerSet(Tracker):
    """Calls every tracker in order; one that raises is named in one warning and switched off."""

    name = "trackers"

    def __init__(self, trackers: list[tuple[str, Tracker, bool]], console: Console | None = None,
                 *, warn: Callable[[str], None] | None = None):
        self._trackers = trackers  # (name, tracker, fail_fast)
        self._off: set[str] = set()
        self.console = console
        self._warn = warn
        self.host: Any = None
        """A TrackerHost: the background trackers, told every event after the ones here."""
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)
        if self._warn is not None:
            self._warn(message)
        elif self.console is not None:
            from rich.markup import escape  # an error's text is not markup ("[/__w/.../pair.cc:553]")

            self.console.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)

    def note(self, message: str) -> None:
        """Not a problem, only why the run is waiting."""
        if self.console is not None:
            from rich.markup import escape

            self.console.print(f"[dim]{escape(message)}[/]", soft_wrap=True)

    def check(self, run: RunInfo) -> None:
        for name, tracker, fail_fast in self._trackers:
            if fail_fast:
                try:
                    tracker.check(run)
                except Exception as exc:
                    raise UserError(f"tracker {name!r} (fail_fast): {one_line(exc)}") from None

    def _call(self, method: str, *args: Any) -> None:
        for name, tracker, fail_fast in self._trackers:
            if name in self._off:
                continue
            try:
                getattr(tracker, method)(*args)
            except Exception as exc:
                if fail_fast:
                    raise UserError(f"tracker {name!r} failed in {method}: {one_line(exc)}") from None
                self._off.add(name)
                self.warn(f"tracker {name!r} failed in {method}: {one_line(exc)}; "
                          "it is off for the rest of this run, training and local outputs go on")
        if self.host is not None:
            getattr(self.host, method)(*args)

    def open(self, run_dir: Path) -> None:
        """Start the background trackers: the run folder exists, and holds their lock."""
        if self.host is not None:
            self.host.start(run_dir)

    def close(self) -> None:
        """Wait for the background trackers to finish what they were sent."""
        if self.host is not None:
            self.host.close()

    def start_run(self, run: RunInfo) -> None:
        self._call("start_run", run)

    def log_epoch(self, fold: int, epoch: int, metrics: dict[str, float], step: int) -> None:
        self._call("log_epoch", fold, epoch, metrics, step)

    def end_fold(self, result: FoldResult) -> None:
        self._call("end_fold", result)

    def end_run(self, summary: RunSummary) -> None:
        self._call("end_run", summary)

    def fail_run(self, run: RunInfo, error: str) -> None:
        self._call("fail_run", run, error)

    def log_evaluation(self, run: RunInfo, evaluation: Evaluation) -> None:
        self._call("log_evaluation", run, evaluation)
