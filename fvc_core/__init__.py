"""fvc: a plugin-based experiment runner for deepfake video detection."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def create_model(name: str, config: Any = None):
    """Build the model a plugin registered under ``name`` (as the seed's notebook does).

    ``config`` is a mapping of the model's own keys, an instance of the plugin's
    config model, an object with such attributes, or None for the defaults.
    """
    from fvc_core.plugins import get_registry

    return get_registry().create("models", name, config)


def open_run(path: Any):
    """The finished run at ``path`` (``<output_dir>/<model name>`` of an ``fvc run``): its config, protocol,
    folds, metrics and predictions as polars tables, each fold's model, and ``score(videos)``
    (``fvc_core.finished_run.FinishedRun``; docs/core.md, "Reading a finished run")."""
    from fvc_core.finished_run import open_run as _open_run

    return _open_run(path)
