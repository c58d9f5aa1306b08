"""Tracking a run: what trackers receive, and how the core calls them. One module per part:

- ``events``: what trackers receive and the base class they implement (``Tracker``, ``RunInfo``,
  ``FoldResult``, ``RunSummary``, ``Evaluation``); part of the plugin contract, light (no torch);
- ``metric_names``: the names of the metrics a run reports (test_f1, val_auc...);
- ``tracker_set``: the trackers of a run called as one, a failing one switched off with a warning;
- ``background``: trackers with ``background: true``, run in a child process;
- ``build``: a run's trackers from its config, and those of a finished run told of an evaluation.

The event types load with the package; the rest (which needs the config and the registry) loads
when first named, so a plugin that imports the event types imports nothing of the runtime.
"""

from __future__ import annotations

from typing import Any

from fvc_core.tracking.events import (
    INTERRUPTED,
    KILLED,
    Evaluation,
    FoldResult,
    RunInfo,
    RunSummary,
    Tracker,
    TrackerConfig,
    history_steps,
    selected_value,
)
from fvc_core.tracking.metric_names import TEST_METRIC_NAMES, test_metric_name

__all__ = [
    "INTERRUPTED", "KILLED", "TEST_METRIC_NAMES", "Evaluation", "FoldResult", "RunInfo", "RunSummary", "Tracker",
    "TrackerConfig", "TrackerSet", "build_trackers", "could_not_start", "history_steps", "selected_value",
    "test_metric_name", "track_evaluation",
]


def __getattr__(name: str) -> Any:
    if name in ("TrackerSet", "could_not_start"):
        from fvc_core.tracking import tracker_set

        return getattr(tracker_set, name)
    if name in ("build_trackers", "track_evaluation"):
        from fvc_core.tracking import build

        return getattr(build, name)
    raise AttributeError(f"module 'fvc_core.tracking' has no attribute {name!r}")
