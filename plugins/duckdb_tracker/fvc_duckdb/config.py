"""The ``duckdb:`` section of experiment.yaml."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from fvc_core.contract import TrackerConfig

DEFAULT_FILE = "results.duckdb"


class DuckdbConfig(TrackerConfig):
    background: bool = Field(
        True,
        description="Write from a child process, so duckdb's import and writes overlap training instead of "
        "pausing it. false: from the training process (as with fail_fast)",
    )
    path: Path | None = Field(
        None,
        description="Results database file, shared by any number of runs; relative to the YAML file's folder. "
        f"Default: <output_dir>/{DEFAULT_FILE}",
    )
    flush_every_s: float = Field(
        10.0, ge=0,
        description="Epoch rows are written at most this often, and at every fold's end (a fold's history "
        "fills in what a killed run held back). 0: every epoch as it ends",
    )
    lock_timeout_s: float = Field(
        60.0, gt=0,
        description="How long a write waits for another process (another fvc run, `fvc results`, a duckdb "
        "shell) to release the file before the tracker gives up",
    )
