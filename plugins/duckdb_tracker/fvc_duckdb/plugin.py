"""Hook implementations. duckdb loads only when a tracker is built or `fvc results` runs."""

from __future__ import annotations

from fvc_core.contract import hookimpl
from fvc_duckdb.config import DuckdbConfig


def build_duckdb_tracker(config: DuckdbConfig):
    from fvc_duckdb.tracker import DuckdbTracker

    return DuckdbTracker(config)


def _results(args):
    from fvc_duckdb.results import run

    return run(args)


@hookimpl
def register_trackers(register):
    register("duckdb", build_duckdb_tracker, config=DuckdbConfig,
             description="DuckDB results file: runs, epochs, folds and predictions, queryable with SQL")


@hookimpl
def register_commands(add_command):
    from fvc_duckdb.results import configure

    add_command("results", "show results from the DuckDB results file: latest run, --runs, or any SQL",
                configure=configure, run=_results)
