"""Hook implementations: the `report` and `explain` commands. Nothing heavy is imported here
(matplotlib, torch and polars load when a command runs), so `fvc --help` stays instant."""

from __future__ import annotations

import argparse
from typing import Any

from fvc_core.contract import hookimpl


def _lazy(module: str, function: str) -> Any:
    def call(arg: argparse.Namespace | argparse.ArgumentParser) -> Any:
        import importlib

        return getattr(importlib.import_module(f"fvc_report.{module}"), function)(arg)

    return call


@hookimpl
def register_commands(add_command):
    add_command("report", "write one self-contained HTML report of one or more runs (metrics, curves, samples)",
                configure=_lazy("command", "configure_report"), run=_lazy("command", "run_report"))
    add_command("explain", "per-frame fake scores and Grad-CAM heat maps of one video, from a run's fold models",
                configure=_lazy("command", "configure_explain"), run=_lazy("command", "run_explain"))
