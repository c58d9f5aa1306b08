"""The trackers of a run, called as one: failure policy, and the split between this process and a child.

A tracker that raises is named in one warning and switched off; training and local outputs go
on. ``fail_fast`` turns that warning into an error that stops the run. Trackers whose config says
``background: true`` run in a child process (see tracker_process.py) and never stop training.
"""

from __future__ import annotations

from rich.console import Console

from fvc_core.config import ResolvedConfig
from fvc_core.errors import UserError, one_line
from fvc_core.plugins import Registry
from fvc_core.tracker_process import TrackerHost, background_spec
from fvc_core.tracker_set import TrackerSet, could_not_start
from fvc_core.tracking import Tracker

__all__ = ["TrackerSet", "build_trackers", "could_not_start"]


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
