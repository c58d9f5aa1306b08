"""The trackers of a run, called as one: failure policy, and the split between this process and a child.

A tracker that raises is named in one warning and switched off; training and local outputs go
on. ``fail_fast`` turns that warning into an error that stops the run. Trackers whose config says
``background: true`` run in a child process (see background.py) and never stop training.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from fvc_core.config import ResolvedConfig
from fvc_core.errors import UserError, one_line
from fvc_core.plugins import Registry
from fvc_core.tracking.background import TrackerHost, background_spec
from fvc_core.tracking.events import Evaluation, Tracker
from fvc_core.tracking.tracker_set import TrackerSet, could_not_start

__all__ = ["TrackerSet", "build_trackers", "could_not_start", "track_evaluation"]


def build_trackers(config: ResolvedConfig, registry: Registry, console: Console) -> TrackerSet:
    """The config's trackers: background ones handed to a TrackerHost unbuilt, the others built here."""
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
                raise UserError(f"tracker {section.name!r}: {one_line(exc)}") from None
            warnings.append(could_not_start(section.name, exc))
            continue
        built.append((section.name, tracker, fail_fast))
    trackers = TrackerSet(built, console)
    if background:
        trackers.host = TrackerHost(background, trackers.warn, trackers.note)
    for message in warnings:
        trackers.warn(message)
    return trackers


def track_evaluation(run_dir: Path, evaluation: Evaluation, console: Console) -> list[str]:
    """Tell the trackers of a finished run (its config.yaml's ``trackers:``) of an evaluation of it.

    Built in this process, ``background`` or not: one event does not need a child. Whatever fails
    (a tracker no longer installed, a store gone) is a warning: the evaluation's files are written
    already. Returns the warnings.
    """
    import json

    from fvc_core.config.run_file import read_run_config
    from fvc_core.config.validation import resolve
    from fvc_core.jobs import run_info
    from fvc_core.plugins import get_registry

    run_dir = Path(run_dir)
    trackers = TrackerSet([], console)
    try:
        config = resolve(read_run_config(run_dir), source=str(run_dir / "config.yaml"))
        state = json.loads((run_dir / "run.json").read_text())
        registry = get_registry(config.disabled_plugins)
    except (UserError, OSError, ValueError) as exc:
        trackers.warn(f"evaluation {evaluation.name!r} not tracked: {one_line(exc, with_type=False)}")
        return trackers.warnings
    run = run_info(config, run_id=str(state.get("run_id")), run_dir=run_dir, protocol=state.get("protocol") or {},
                   versions=state.get("versions") or {}, resumed=True)
    built: list[tuple[str, Tracker, bool]] = []
    problems = []
    for section in config.trackers:
        try:
            # fail_fast guards training; the evaluation's numbers are on disk whatever a tracker does.
            built.append((section.name, registry.get("trackers", section.name).factory(section.config), False))
        except Exception as exc:
            problems.append(could_not_start(section.name, exc))
    trackers = TrackerSet(built, console)
    for message in problems:
        trackers.warn(message)
    trackers.log_evaluation(run, evaluation)
    return trackers.warnings
