"""The results database: its tables, and short write transactions that wait their turn.

DuckDB lets one process at a time open a file for writing (and a reader blocks a
writer too). Several ``fvc run`` processes share one results file, so no process
keeps it open: every tracker event opens it, writes in one transaction and
closes it again, and an open that finds the file locked retries with jittered
back-off until ``lock_timeout_s``. A transaction lasts milliseconds, an epoch
minutes, so waits are short and nothing is lost; writes are upserts keyed by
run, fold and epoch, so a resumed run rewrites rather than duplicates.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from fvc_core.contract import TEST_METRIC_NAMES, DiskFullError, one_line, write_atomic

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id VARCHAR PRIMARY KEY,
    experiment VARCHAR,
    model VARCHAR,
    config JSON,
    config_hash VARCHAR,
    protocol JSON,
    versions JSON,
    folds INTEGER,
    run_dir VARCHAR,
    status VARCHAR,          -- running, finished, failed, interrupted
    error VARCHAR,
    attempts INTEGER,        -- 1 + the number of times the run was resumed
    started_at TIMESTAMP,    -- UTC
    finished_at TIMESTAMP,
    updated_at TIMESTAMP
);
CREATE TABLE IF NOT EXISTS epochs (
    run_id VARCHAR,
    fold INTEGER,
    epoch INTEGER,
    step INTEGER,
    logged_at TIMESTAMP,
    train_loss DOUBLE,
    val_loss DOUBLE,
    val_acc DOUBLE,
    val_auc DOUBLE,
    lr DOUBLE,
    PRIMARY KEY (run_id, fold, epoch)
);
CREATE TABLE IF NOT EXISTS folds (
    run_id VARCHAR,
    fold INTEGER,
    test_accuracy DOUBLE,
    test_precision DOUBLE,
    test_recall DOUBLE,
    test_f1 DOUBLE,
    test_auc DOUBLE,
    test_ap DOUBLE,
    test_eer DOUBLE,
    best_epoch INTEGER,
    fold_dir VARCHAR,
    finished_at TIMESTAMP,
    PRIMARY KEY (run_id, fold)
);
CREATE TABLE IF NOT EXISTS predictions (
    run_id VARCHAR,
    fold INTEGER,
    video_path VARCHAR,
    label INTEGER,
    score DOUBLE
);
CREATE OR REPLACE VIEW results AS
    SELECT r.experiment, r.model, r.config_hash, f.*
    FROM folds f JOIN runs r USING (run_id);
CREATE OR REPLACE VIEW run_results AS
    SELECT r.run_id, r.experiment, r.model, r.config_hash, r.status, r.folds,
           count(f.fold) AS folds_done,
           avg(f.test_accuracy) AS test_accuracy_mean, stddev_samp(f.test_accuracy) AS test_accuracy_std,
           avg(f.test_f1) AS test_f1_mean, stddev_samp(f.test_f1) AS test_f1_std,
           avg(f.test_auc) AS test_auc_mean, stddev_samp(f.test_auc) AS test_auc_std,
           avg(f.test_ap) AS test_ap_mean, stddev_samp(f.test_ap) AS test_ap_std,
           avg(f.test_eer) AS test_eer_mean, stddev_samp(f.test_eer) AS test_eer_std,
           r.started_at, r.finished_at
    FROM runs r LEFT JOIN folds f USING (run_id)
    GROUP BY ALL;
"""

# Key columns of a table's rows, never metric columns.
KEYS = {"epochs": ("run_id", "fold", "epoch"), "folds": ("run_id", "fold"), "run_summary": ("run_id", "metric")}

# Repeated cross-validation only (trainer.repeats > 1), so a run of one repeat writes what it always did.
RUN_SUMMARY = """
CREATE TABLE IF NOT EXISTS run_summary (
    run_id VARCHAR,
    metric VARCHAR,
    repeats INTEGER,
    n_folds INTEGER,
    mean DOUBLE,
    std DOUBLE,
    ci95_low DOUBLE,
    ci95_high DOUBLE,
    PRIMARY KEY (run_id, metric)
);
"""
# `fvc sweep` only: which run is which point of which sweep (fvc results --sweep NAME).
SWEEP_POINTS = """
CREATE TABLE IF NOT EXISTS sweep_points (
    sweep VARCHAR,
    point VARCHAR,
    run_id VARCHAR,
    "values" JSON,           -- the keys the sweep varies, with this point's values
    metric VARCHAR,          -- the validation metric that ranks the points
    mode VARCHAR,            -- min or max: which end of it is better
    PRIMARY KEY (sweep, point)
);
"""


def write_sweep_point(con: duckdb.DuckDBPyConnection, run_id: str, sweep: Mapping[str, Any]) -> None:
    con.execute(SWEEP_POINTS)
    con.execute("INSERT INTO sweep_points VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (sweep, point) DO UPDATE SET "
                "run_id = excluded.run_id, \"values\" = excluded.\"values\", metric = excluded.metric, "
                "mode = excluded.mode",
                [str(sweep["name"]), str(sweep["point"]), run_id, to_json(sweep.get("values") or {}),
                 sweep.get("metric"), sweep.get("mode")])


# fvc evaluate: one row per (run, evaluation name, scope, scoring model). scope: 'overall' or a fake
# method (against every real video of the table); scored_by: 'mean' (the folds' mean score) or 'fold_<k>'.
EVALUATIONS = """
CREATE TABLE IF NOT EXISTS evaluations (
    run_id VARCHAR,
    name VARCHAR,
    scope VARCHAR,
    scored_by VARCHAR,
    test_accuracy DOUBLE,
    test_f1 DOUBLE,
    test_auc DOUBLE,
    test_ap DOUBLE,
    test_eer DOUBLE,
    test_frame_roc_auc DOUBLE,
    n INTEGER,
    n_real INTEGER,
    n_fake INTEGER,
    dataset VARCHAR,
    layout VARCHAR,
    split VARCHAR,
    aggregation VARCHAR,
    protocol JSON,
    eval_dir VARCHAR,
    evaluated_at TIMESTAMP,
    PRIMARY KEY (run_id, name, scope, scored_by)
);
"""
NOT_METRICS = {"run_id", "fold", "epoch", "step", "logged_at", "finished_at", "fold_dir", "best_epoch"}



class ResultsUnavailable(RuntimeError):
    """The results file cannot be opened, or stayed locked past the timeout."""


def _disk_full(exc: BaseException) -> bool:
    from fvc_core.contract import is_disk_full

    return is_disk_full(exc)


def _no_space(path: Path) -> ResultsUnavailable:
    return ResultsUnavailable(f"no space left on the device for results database {path}: free some space, "
                              "later runs write to it again")


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def column_name(key: str) -> str:
    """A metric name as a plain SQL column name: lower case, letters, digits and underscores."""
    name = re.sub(r"[^a-z0-9_]", "_", key.lower())
    return name if re.match(r"[a-z_]", name) else f"m_{name}"


def fold_column(key: str) -> str:
    return TEST_METRIC_NAMES.get(key) or column_name(key if key.startswith("test_") else f"test_{key}")


def number(value: Any) -> float | None:
    """A metric value for a DOUBLE column; NaN becomes NULL so that AVG and STDDEV skip it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return None if value != value else value


def _why(exc: BaseException) -> str:
    return one_line(exc, with_type=False)


# DuckDB's file lock keeps other processes out, not other threads of this one (they would share one
# database instance, and two transactions adding columns at once conflict): a sweep's points side by
# side, with trackers in the training process, take turns here.
_in_process = threading.RLock()


@contextlib.contextmanager
def connect(path: Path, *, read_only: bool = False, timeout_s: float = 60.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to ``path`` once its lock is free; closed (and the lock released) on exit."""
    with _in_process:
        with _connect(path, read_only=read_only, timeout_s=timeout_s) as con:
            yield con


@contextlib.contextmanager
def _connect(path: Path, *, read_only: bool, timeout_s: float) -> Iterator[duckdb.DuckDBPyConnection]:
    path = Path(path)
    if not read_only:
        create_database(path)
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.Error as exc:
            locked = isinstance(exc, duckdb.IOException) and "Could not set lock" in str(exc)
            if not locked:
                raise _unopenable(path, exc) from None
            if time.monotonic() >= deadline:
                holder = re.search(r"Conflicting lock is held in (.*?)(?:\. See also|$)", str(exc))
                who = f" by {holder.group(1)}" if holder else ""
                raise ResultsUnavailable(
                    f"results database {path} stayed locked{who} for {timeout_s:g}s; close the other "
                    "program (a duckdb shell?) or raise duckdb.lock_timeout_s"
                ) from None
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.2)
    try:
        yield con
    finally:
        con.close()


# What DuckDB says of a file that is not (or no longer) a whole database: random bytes, a cut copy.
DAMAGED = ("not a valid DuckDB database", "Corrupt database", "Could not read enough bytes")


def _unopenable(path: Path, exc: BaseException) -> ResultsUnavailable:
    if _disk_full(exc):
        return _no_space(path)
    if path.is_file() and path.stat().st_size == 0:
        # What a full disk left behind before fvc made new files whole (see create_database).
        return ResultsUnavailable(f"results database {path} is an empty file (0 bytes; left by a full disk?): "
                                  "delete it and the next run makes a new one")
    if any(sign in str(exc) for sign in DAMAGED) or not isinstance(exc, duckdb.IOException):
        return ResultsUnavailable(f"results database {path} is damaged or not a DuckDB file ({_why(exc)}); "
                                  "move it aside and the next run makes a new one")
    return ResultsUnavailable(f"cannot open results database {path}: {_why(exc)}")


def create_database(path: Path) -> None:
    """Make ``path`` a results database holding fvc's tables, whole or not at all, unless it exists.

    Built under a name of this process's own and linked into place: a full disk or a kill
    half-way leaves no file that later runs would find and fail to open, and only the file
    made here is removed.
    """
    if path.exists():
        return
    def build(tmp: Path) -> None:
        wal = tmp.with_name(tmp.name + ".wal")
        try:
            with contextlib.closing(duckdb.connect(str(tmp))) as con:
                con.execute(SCHEMA)
                con.execute("CHECKPOINT")
            if wal.exists():  # closing could not fold the log into the file: it is not whole
                raise ResultsUnavailable(f"results database {path} could not be created whole")
        finally:
            wal.unlink(missing_ok=True)

    try:
        # create-if-absent, atomically: another run's new file is never replaced
        write_atomic(path, build, per_process=True, create_only=True)
    except DiskFullError:
        raise _no_space(path) from None
    except (duckdb.Error, OSError) as exc:
        raise ResultsUnavailable(f"cannot create results database {path}: {_why(exc)}") from None


@contextlib.contextmanager
def transaction(path: Path, timeout_s: float) -> Iterator[duckdb.DuckDBPyConnection]:
    """One write transaction on the results file; all of it lands or none of it."""
    with connect(path, timeout_s=timeout_s) as con:
        con.begin()
        try:
            yield con
            con.commit()
        except BaseException as exc:
            with contextlib.suppress(duckdb.Error):
                con.rollback()
            if isinstance(exc, duckdb.Error) and _disk_full(exc):
                raise _no_space(path) from None
            raise


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(SCHEMA)


def ensure_columns(con: duckdb.DuckDBPyConnection, table: str, names: Iterable[str]) -> None:
    """Metrics a plugin adds (lr_backbone, epoch_seconds...) get their own DOUBLE column on first sight."""
    existing = set(con.table(table).columns)
    for name in names:
        if name not in existing:
            con.execute(f'ALTER TABLE {table} ADD COLUMN IF NOT EXISTS "{name}" DOUBLE')


def upsert(con: duckdb.DuckDBPyConnection, table: str, row: Mapping[str, Any], *, update: bool = True) -> None:
    """Insert ``row``; on the same key, overwrite its columns (or keep the old row: ``update=False``)."""
    cols = list(row)
    quoted = ", ".join(f'"{c}"' for c in cols)
    marks = ", ".join("?" for _ in cols)
    keys = KEYS[table]
    if update:
        sets = ", ".join(f'"{c}" = excluded."{c}"' for c in cols if c not in keys)
        conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}"
    else:
        conflict = f"ON CONFLICT ({', '.join(keys)}) DO NOTHING"
    con.execute(f"INSERT INTO {table} ({quoted}) VALUES ({marks}) {conflict}", list(row.values()))


def metric_row(metrics: Mapping[str, Any], rename=column_name) -> dict[str, float | None]:
    """Numbers only (a confusion matrix or a note is not a column), under column names; NaN as NULL."""
    out: dict[str, float | None] = {}
    for key, value in metrics.items():
        if key not in NOT_METRICS and not isinstance(value, bool) and isinstance(value, (int, float)):
            out[rename(key)] = number(value)
    return out


def write_epoch(con: duckdb.DuckDBPyConnection, run_id: str, fold: int, epoch: int, step: int | None,
                metrics: Mapping[str, Any], *, update: bool = True) -> None:
    values = metric_row(metrics)
    ensure_columns(con, "epochs", values)
    upsert(con, "epochs", {"run_id": run_id, "fold": fold, "epoch": epoch, "step": step, "logged_at": utc_now(),
                           **values}, update=update)


def write_fold(con: duckdb.DuckDBPyConnection, run_id: str, fold: int, metrics: Mapping[str, Any],
               best_epoch: int | None, fold_dir: Path, predictions: Path | None,
               repeat: int | None = None) -> None:
    """``repeat``: repeated cross-validation's repeat of this fold (a ``repeat`` column); None without repeats."""
    values = metric_row(metrics, rename=fold_column)
    ensure_columns(con, "folds", values)
    extra: dict[str, Any] = {}
    if repeat is not None:
        con.execute('ALTER TABLE folds ADD COLUMN IF NOT EXISTS "repeat" INTEGER')
        extra["repeat"] = repeat
    upsert(con, "folds", {"run_id": run_id, "fold": fold, **extra, **values, "best_epoch": best_epoch,
                          "fold_dir": str(fold_dir), "finished_at": utc_now()})
    con.execute("DELETE FROM predictions WHERE run_id = ? AND fold = ?", [run_id, fold])
    if predictions is not None and Path(predictions).is_file():
        con.execute(
            "INSERT INTO predictions SELECT ?, ?, video_path, CAST(label AS INTEGER), CAST(score AS DOUBLE) "
            "FROM read_parquet(?)",
            [run_id, fold, str(predictions)],
        )


def has_fold(con: duckdb.DuckDBPyConnection, run_id: str, fold: int) -> bool:
    return con.execute("SELECT count(*) FROM folds WHERE run_id = ? AND fold = ?", [run_id, fold]).fetchone()[0] > 0


def to_json(value: Any) -> str:
    return json.dumps(value, default=str)


def write_run_summary(con: duckdb.DuckDBPyConnection, run_id: str, repeats: int, n_folds: int,
                      mean: Mapping[str, float], std: Mapping[str, float],
                      ci95: Mapping[str, tuple[float, float]]) -> None:
    """One row per test metric (test_auc, ...): mean, std and 95 % interval over all repeats x folds."""
    con.execute(RUN_SUMMARY)
    for key in mean:
        low, high = ci95.get(key, (None, None))
        upsert(con, "run_summary", {"run_id": run_id, "metric": fold_column(key), "repeats": repeats,
                                    "n_folds": n_folds, "mean": number(mean[key]), "std": number(std.get(key)),
                                    "ci95_low": number(low), "ci95_high": number(high)})


def write_evaluation(con: duckdb.DuckDBPyConnection, run_id: str, name: str, metrics: Mapping[str, Any],
                     protocol: Mapping[str, Any], eval_dir: Path) -> None:
    """The rows of one evaluation, replacing those of an earlier one under the same name."""
    con.execute(EVALUATIONS)
    con.execute("DELETE FROM evaluations WHERE run_id = ? AND name = ?", [run_id, name])
    aggregation = protocol.get("aggregation")
    common = {"run_id": run_id, "name": name, "dataset": protocol.get("dataset"), "layout": protocol.get("layout"),
              "split": protocol.get("split"),
              "aggregation": aggregation.get("name") if isinstance(aggregation, Mapping) else aggregation,
              "protocol": to_json(protocol), "eval_dir": str(eval_dir), "evaluated_at": utc_now()}
    scopes = [("overall", metrics.get("overall") or {})]
    scopes += sorted((metrics.get("per_method") or {}).items())
    for scope, part in scopes:
        scored = [("mean", part.get("fold_mean_score") or {})]
        scored += [(f"fold_{k}", v) for k, v in sorted((part.get("folds") or {}).items(), key=lambda kv: int(kv[0]))]
        for scored_by, values in scored:
            row = metric_row({k: v for k, v in values.items() if k not in ("n", "n_real", "n_fake", "threshold",
                                                                            "n_frames")}, rename=fold_column)
            ensure_columns(con, "evaluations", row)
            counts = {k: values.get(k) for k in ("n", "n_real", "n_fake")}
            record = {**common, "scope": scope, "scored_by": scored_by, **row, **counts}
            cols = ", ".join(f'"{c}"' for c in record)
            con.execute(f"INSERT INTO evaluations ({cols}) VALUES ({', '.join('?' for _ in record)})",
                        list(record.values()))
