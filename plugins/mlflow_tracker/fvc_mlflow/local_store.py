"""The default local store, ``<output_dir>/mlflow.db``, made in milliseconds rather than seconds.

MLflow makes a new SQLite store by replaying its whole schema history (well over
a hundred alembic migrations, each committed and synced to disk): seconds on an
idle machine, ten and more on a busy one, at the start of every run into a new
output folder. Instead the migrated empty store is built once per MLflow version
(without syncing each step: a half-built template is thrown away, never used)
and kept in the user's cache; a new output folder gets a copy of it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from fvc_core.contract import write_atomic


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "fvc"


@contextlib.contextmanager
def _unsynced(path: Path) -> Iterator[None]:
    """SQLite connections to ``path`` skip fsync while the block runs (other databases are left alone)."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    target = str(path.resolve())

    def on_connect(dbapi_connection, _record) -> None:
        if isinstance(dbapi_connection, sqlite3.Connection):
            files = [row[2] for row in dbapi_connection.execute("PRAGMA database_list")]
            if target in files:
                dbapi_connection.execute("PRAGMA synchronous=OFF")
                dbapi_connection.execute("PRAGMA journal_mode=MEMORY")

    event.listen(Engine, "connect", on_connect)
    try:
        yield
    finally:
        event.remove(Engine, "connect", on_connect)


def _build(path: Path) -> None:
    from mlflow import MlflowClient

    with _unsynced(path):
        MlflowClient(f"sqlite:///{path.resolve()}").search_experiments(max_results=1)


def template() -> Path:
    """A migrated, empty store for the installed MLflow; built on first use."""
    import mlflow

    name = f"mlflow-{mlflow.__version__}-empty.db"
    cached = cache_dir() / name
    if cached.is_file():
        return cached
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        folder = cached.parent
    except OSError:  # no writable cache: build it for this run only
        folder = Path(tempfile.mkdtemp(prefix="fvc-mlflow-"))
        cached = folder / name
    write_atomic(cached, _build, per_process=True)  # whole or not at all, even with two runs building it at once
    return cached


def ensure_local_store(db: Path, artifact_root: Path) -> None:
    """Create ``db`` from the template unless it exists; never replaces a store another process made.

    Any new SQLite store is made this way, not only the default one: MLflow left to itself migrates
    a new file in place, and two runs starting at once on it collide ("table ... already exists").
    """
    if db.exists():
        return
    db.parent.mkdir(parents=True, exist_ok=True)
    source = template()

    def build(tmp: Path) -> None:
        shutil.copyfile(source, tmp)
        # The template's built-in "Default" experiment points wherever it was built: point it here.
        with contextlib.closing(sqlite3.connect(tmp)) as con, con:
            con.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = 0",
                        [(artifact_root / "0").resolve().as_uri()])

    write_atomic(db, build, per_process=True, create_only=True)  # never replaces a store made meanwhile


def sqlite_file(uri: str) -> Path | None:
    """The file of a ``sqlite:///`` tracking URI (relative or absolute), None for anything else."""
    if not uri.startswith("sqlite:///"):
        return None
    path = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def usable_problem(db: Path) -> str | None:
    """Why MLflow could not write the store ``db``, found in milliseconds; None when it can.

    MLflow retries a store it cannot open ten times over about 100 s, with a multi-line warning
    each time, and a read-only one fails only at the first write: neither is worth waiting for.
    """
    if not os.access(db, os.R_OK | os.W_OK):
        return "the file is read-only"
    # SQLite writes its journal beside the database.
    if not os.access(db.parent, os.W_OK | os.X_OK):
        return f"its folder {db.parent} is read-only (SQLite writes its journal there)"
    try:
        with contextlib.closing(sqlite3.connect(f"{db.resolve().as_uri()}?mode=rw", uri=True)) as con:
            con.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as exc:
        return f"not an SQLite database, or damaged ({exc})"
    return None
