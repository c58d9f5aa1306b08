"""Moved to ``fvc_core.tracking.build``; this name stays until the plugins import it through the contract."""

from fvc_core.tracking.build import TrackerSet, build_trackers, could_not_start, track_evaluation  # noqa: F401
