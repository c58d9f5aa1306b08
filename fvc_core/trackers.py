"""The trackers of a run, called as one: failure policy, and the split between this process and a child.

A tracker that raises is named in one warning and switched off; training and local outputs go
on. ``fail_fast`` turns that warning into an error that stops the run. Trackers whose config says
``background: true`` run in a child process (see tracker_process.py) and never stop training.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console

from fvc_core.config import ResolvedConfig
from fvc_core.errors import UserError
from fvc_core.plugins import Registry
from fvc_core.tracking import FoldResult, RunInfo, RunSummary, Tracker


def reason(exc: BaseException) -> str:
    """``Type: first line of the message``: what a one-line warning or error says about an exception."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def could_not_start(name: str, exc: BaseException) -> str:
    """The warning for a tracker whose factory raised: the run goes on without it."""
    return f"tracker {name!r} could not start: {reason(exc)}; running without it"


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
            self.console.print(f"[yellow]warning:[/] {message}", soft_wrap=True)

    def note(self, message: str) -> None:
        """Not a problem, only why the run is waiting."""
        if self.console is not None:
            self.console.print(f"[dim]{message}[/]", soft_wrap=True)

    def check(self, run: RunInfo) -> None:
        for name, tracker, fail_fast in self._trackers:
            if fail_fast:
                try:
                    tracker.check(run)
                except Exception as exc:
                    raise UserError(f"tracker {name!r} (fail_fast): {reason(exc)}") from None

    def _call(self, method: str, *args: Any) -> None:
        for name, tracker, fail_fast in self._trackers:
            if name in self._off:
                continue
            try:
                getattr(tracker, method)(*args)
            except Exception as exc:
                if fail_fast:
                    raise UserError(f"tracker {name!r} failed in {method}: {reason(exc)}") from None
                self._off.add(name)
                self.warn(f"tracker {name!r} failed in {method}: {reason(exc)}; "
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


def build_trackers(config: ResolvedConfig, registry: Registry, console: Console) -> TrackerSet:
    """The config's trackers: background ones handed to a TrackerHost unbuilt, the others built here."""
    from fvc_core.tracker_process import TrackerHost, background_spec

    built: list[tuple[str, Tracker, bool]] = []
    background: list[tuple[str, bytes]] = []
    warnings = []
    for section in config.trackers:
        fail_fast = bool(getattr(section.config, "fail_fast", False))
        factory = registry.get("trackers", section.name).factory
        # fail_fast needs every call answered before training goes on: such a tracker stays here.
        if getattr(section.config, "background", False) and not fail_fast:
            spec = background_spec(factory, section.config)
            if spec is not None:
                background.append((section.name, spec))
                continue
        try:
            tracker = factory(section.config)
        except Exception as exc:
            if fail_fast:
                raise UserError(f"tracker {section.name!r}: {reason(exc)}") from None
            warnings.append(could_not_start(section.name, exc))
            continue
        built.append((section.name, tracker, fail_fast))
    trackers = TrackerSet(built, console)
    if background:
        trackers.host = TrackerHost(background, trackers.warn, trackers.note)
    for message in warnings:
        trackers.warn(message)
    return trackers
