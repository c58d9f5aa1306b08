"""``fvc results``: the results database on the terminal, as rich tables.

Without SQL: the latest run's folds with mean ± std (``--run`` picks another),
or one row per run (``--runs``). With SQL: any query over the tables. The file
is opened read-only, and only for the query, so a training run can go on writing.
"""

from __future__ import annotations

import argparse
import math
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from fvc_core.contract import UserError, one_line
from fvc_duckdb.config import DEFAULT_FILE

SEARCH_DEPTH = 3
TEST_ORDER = ("test_accuracy", "test_precision", "test_recall", "test_f1", "test_auc", "test_ap", "test_eer")
RUN_METRICS = ("test_auc", "test_f1", "test_accuracy", "test_eer")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sql", nargs="?", metavar="SQL",
                        help="a query over runs, epochs, folds, predictions and the views results, run_results")
    parser.add_argument("--db", default=".", metavar="PATH",
                        help=f"the results file, or a folder holding {DEFAULT_FILE} (searched {SEARCH_DEPTH} "
                        "levels down, e.g. in output_dir); default: the current folder")
    parser.add_argument("--runs", action="store_true", help="one row per run: models side by side, mean ± std")
    parser.add_argument("--evaluations", action="store_true",
                        help="the fvc evaluate results: each run's evaluations (the folds' mean score), overall")
    parser.add_argument("--run", metavar="RUN_ID", help="this run's folds (an id prefix will do) instead of the latest")
    parser.add_argument("--sweep", metavar="NAME", help="the points of `fvc sweep` NAME side by side, ranked by "
                        "their validation metric (--db: the output_dir or the sweep's folder)")
    parser.add_argument("--limit", type=int, default=200, metavar="N", help="show at most N rows (default 200)")


def find_database(where: str | Path) -> Path:
    """``where`` itself if it is a file, else the one results.duckdb in or under the folder."""
    path = Path(where)
    if path.is_file():
        return path
    if not path.is_dir():
        raise UserError(f"--db {where}: no such file or folder")
    if (path / DEFAULT_FILE).is_file():
        return path / DEFAULT_FILE
    found = []
    for folder, dirs, files in os.walk(path):
        depth = len(Path(folder).relative_to(path).parts)
        dirs[:] = [] if depth >= SEARCH_DEPTH else sorted(d for d in dirs if not d.startswith("."))
        if DEFAULT_FILE in files:
            found.append(Path(folder) / DEFAULT_FILE)
    if not found:
        raise UserError(f"no {DEFAULT_FILE} in {path} or below: run an experiment with the duckdb tracker "
                        "(trackers: [console, duckdb]) or pass --db PATH")
    if len(found) > 1:
        shown = ", ".join(str(p) for p in sorted(found)[:5])
        raise UserError(f"several results files under {path} ({shown}); choose one with --db")
    return found[0]


def run(args: argparse.Namespace) -> int:
    import duckdb

    from fvc_core.contract import get_console
    from fvc_duckdb import store

    if args.sql and args.db == "." and not any(c.isspace() for c in args.sql) and Path(args.sql).exists():
        # `fvc results runs/quickstart`: a place to read, not a query (no statement is a bare path).
        args.db, args.sql = args.sql, None
    where = Path(args.db)
    run_json = where / "run.json"
    if where.is_dir() and run_json.is_file() and not (where / DEFAULT_FILE).is_file():
        # A run folder: its results are in its output_dir, and its own folds are the ones to show.
        from fvc_core.contract import read_json

        record = read_json(run_json)
        args.run = args.run or (record.get("run_id") if isinstance(record, dict) else None)
        if not (where.parent / DEFAULT_FILE).is_file():  # never another run's file found further down
            raise UserError(f"{where}: an fvc run without a {DEFAULT_FILE} beside it in {where.parent} (it ran "
                            "without the duckdb tracker: trackers: [console, duckdb]); its numbers are in "
                            f"{where / 'summary.json'}")
        where = where.parent / DEFAULT_FILE
    if getattr(args, "sweep", None) and (where / args.sweep / DEFAULT_FILE).is_file():
        where = where / args.sweep  # the output_dir of a sweep: its results file is in the sweep's folder
    path = find_database(where)
    console = get_console()
    try:
        with store.connect(path, read_only=True, timeout_s=10) as con:
            if args.sql:
                try:
                    relation = con.sql(args.sql)
                    frame = relation.pl() if relation is not None else None
                except (duckdb.IOException, duckdb.InternalException):
                    raise  # the file, not the query: said below
                except duckdb.Error as exc:
                    if any(sign in str(exc) for sign in store.DAMAGED):
                        raise
                    raise UserError(f"SQL: {one_line(exc, with_type=False)}") from None
                if frame is None:
                    console.print("done (the results file is opened read-only: statements that write fail)")
                else:
                    console.print(table(frame, f"{path}", args.limit))
            elif getattr(args, "sweep", None):
                console.print(sweep_table(con, path, args.sweep, args.limit))
            elif args.evaluations:
                console.print(evaluations_table(con, path, args.limit))
            elif args.runs:
                frame = con.sql("SELECT * FROM run_results ORDER BY started_at, run_id").pl()
                if frame.height == 0:
                    raise UserError(f"{path}: no runs recorded yet")
                console.print(runs_table(frame, f"runs in {path}", args.limit))
            else:
                console.print(folds_table(con, path, args.run))
    except store.ResultsUnavailable as exc:
        raise UserError(str(exc)) from None
    except duckdb.CatalogException as exc:
        raise UserError(f"{path}: not an fvc results database ({one_line(exc, with_type=False)})") from None
    except duckdb.Error as exc:
        # A file cut short or overwritten in places opens, then fails at the first block it reads.
        raise UserError(f"results database {path} is damaged ({one_line(exc, with_type=False)}); "
                        "move it aside and the next run makes a new one") from None
    return 0


def sweep_table(con, path: Path, name: str, limit: int):
    """Sweep ``name`` ranked as ``fvc sweep`` ranks it (and writes sweep.parquet): one row per configuration,
    points that differ only in ``seed`` grouped, best first by the validation metric the trainer chose
    epochs on (each fold's best value of it), test metrics beside it. The numbers come from this
    file; the grouping, the intervals and the order from the ranking fvc sweep uses (the contract's
    ``rank`` and ``ranking_table``), so the two cannot drift."""
    import json

    from fvc_core.contract import SCORE_METRICS, TEST_METRIC_NAMES, Selection, rank, ranking_table

    if "sweep_points" not in set(con.sql("SELECT table_name FROM information_schema.tables").pl()["table_name"]):
        raise UserError(f"{path}: no sweep recorded (fvc sweep with the duckdb tracker records one)")
    points = con.sql(
        """SELECT s.point, s.run_id, s."values", s.metric, s.mode, r.status, r.folds, r.config, r.config_hash,
                  r.run_dir, epoch(r.finished_at) - epoch(r.started_at) AS wall_s
           FROM sweep_points s LEFT JOIN runs r USING (run_id) WHERE s.sweep = ? ORDER BY s.point""",
        params=[name]).pl()
    if points.height == 0:
        known = con.sql("SELECT DISTINCT sweep FROM sweep_points ORDER BY sweep").pl()["sweep"].to_list()
        raise UserError(f"--sweep {name}: no such sweep in {path} (sweeps there: {', '.join(known) or 'none'})")
    metric, mode = points["metric"][0], points["mode"][0] or "min"
    fold_columns = set(con.table("folds").columns)
    tests = {m: TEST_METRIC_NAMES.get(m, f"test_{m}") for m in SCORE_METRICS}
    picked = ", ".join(f'f."{c}"' if c in fold_columns else f'NULL AS "{c}"' for c in tests.values())
    folds = con.sql(
        f"""SELECT s.point, f.run_id, f.fold, {picked} FROM sweep_points s JOIN folds f USING (run_id)
            WHERE s.sweep = ? ORDER BY s.point, f.fold""", params=[name]).pl()
    min_delta = {row["run_id"]: _min_delta(row["config"]) for row in points.iter_rows(named=True)}
    min_epochs = {row["run_id"]: _min_epochs(row["config"]) for row in points.iter_rows(named=True)}
    chosen = _chosen_values(con, name, metric, mode, min_delta, min_epochs) if metric else {}
    records: dict[str, list[dict]] = {}
    for row in folds.iter_rows(named=True):
        records.setdefault(row["point"], []).append(
            {**{m: row[c] for m, c in tests.items()}, "best_metric": metric,
             "best_metric_value": chosen.get((row["run_id"], row["fold"]))})
    entries = []
    for row in points.iter_rows(named=True):
        config = json.loads(row["config"] or "{}")
        trainer = config.get("trainer") if isinstance(config.get("trainer"), dict) else {}
        expected = int(row["folds"] or 0)
        entries.append({
            "id": row["point"], "varied": json.loads(row["values"] or "{}"), "run_dir": row["run_dir"] or "",
            "folds": expected, "k": int(trainer.get("folds") or expected or 1),
            "config_hash": row["config_hash"] or "", "status": row["status"] or "pending",
            # first start to finish; an unfinished point has no wall time yet
            "wall_s": row["wall_s"] if row["status"] == "finished" else None,
            "fold_records": records.get(row["point"], []),
        })
    rows = rank(name, entries, Selection(metric, mode) if metric else None)
    keys = list(dict.fromkeys(k for e in entries for k in e["varied"] if k != "seed"))
    shown = f"{path}" if len(rows) <= limit else f"{path}; {len(rows) - limit} more not shown (--limit)"
    return ranking_table(name, rows[:limit], keys, Selection(metric, mode) if metric else None, source=shown)


def _min_delta(config: str | None) -> float:
    import json

    stopping = ((json.loads(config or "{}").get("trainer") or {}).get("early_stopping") or {})
    return float(stopping.get("min_delta") or 0.0)


def _min_epochs(config: str | None) -> int:
    """The first epoch the trainer could keep, as fvc_core.training.loop resolves it; 1 for a run
    recorded before early_stopping.min_epochs existed (its config has no such key)."""
    import json
    import math

    trainer = json.loads(config or "{}").get("trainer") or {}
    stopping = trainer.get("early_stopping") or {}
    if "min_epochs" not in stopping:
        return 1
    epochs = int(trainer.get("epochs") or 1)
    return min(epochs, stopping["min_epochs"] or math.ceil(epochs / 2))


def _chosen_values(con, name: str, metric: str, mode: str, min_delta: dict[str, float],
                   min_epochs: dict[str, int] | None = None) -> dict[tuple, float]:
    """Per (run, fold): the value of the selection metric the trainer kept as its best (metrics.json's
    ``best_metric_value``), by replaying the fold's epochs through the trainer's own EarlyStopping. Not
    the value at ``best_epoch``: with ``early_stopping.keep: last`` that is the last epoch, not the best."""
    from fvc_core.contract import EarlyStopping
    from fvc_duckdb import store

    column = store.column_name(metric)
    columns = set(con.table("epochs").columns)
    if column not in columns:
        return {}
    tiebreak = "e.val_loss" if "val_loss" in columns else "NULL"
    epochs = con.sql(
        f"""SELECT e.run_id, e.fold, e.epoch, e."{column}" AS value, {tiebreak} AS tiebreak
            FROM sweep_points s JOIN epochs e USING (run_id) WHERE s.sweep = ?
            ORDER BY e.run_id, e.fold, e.epoch""", params=[name]).pl()
    stopping: dict[tuple, EarlyStopping] = {}
    for row in epochs.iter_rows(named=True):
        key = (row["run_id"], row["fold"])
        if key not in stopping:
            stopping[key] = EarlyStopping(metric, mode, None, min_delta.get(row["run_id"], 0.0),
                                          min_epochs=(min_epochs or {}).get(row["run_id"], 1))
        nan = float("nan")  # a NaN metric is stored as NULL
        stopping[key].update(nan if row["value"] is None else row["value"], row["epoch"],
                             nan if row["tiebreak"] is None else row["tiebreak"])
    return {key: s.best for key, s in stopping.items()}


def pick_run(con, path: Path, prefix: str | None) -> dict[str, Any]:
    if prefix:
        rows = con.sql("SELECT * FROM runs WHERE starts_with(run_id, ?) ORDER BY updated_at", params=[prefix]).pl()
        if rows.height == 0:
            raise UserError(f"--run {prefix}: no such run in {path} (fvc results --runs lists them)")
        if rows.height > 1:
            raise UserError(f"--run {prefix}: {rows.height} runs start with it; give more of the id")
    else:
        rows = con.sql("SELECT * FROM runs ORDER BY updated_at DESC, started_at DESC LIMIT 1").pl()
        if rows.height == 0:
            raise UserError(f"{path}: no runs recorded yet")
    return rows.row(0, named=True)


def folds_table(con, path: Path, prefix: str | None):
    """One row per fold of a run with its test metrics, then their mean and std (sample std, as SQL STDDEV)."""
    import polars as pl
    from rich.table import Table

    info = pick_run(con, path, prefix)
    folds = con.sql("SELECT * FROM folds WHERE run_id = ? ORDER BY fold", params=[info["run_id"]]).pl()
    tests = [c for c in TEST_ORDER if c in folds.columns]
    out = Table(title=f"{info['experiment']}: {info['model']}, run {info['run_id'][:12]} ({info['status']}, "
                f"{folds.height}/{info['folds']} folds), test metrics", caption=str(path))
    out.add_column("fold", overflow="fold")
    for name in tests:
        out.add_column(name.removeprefix("test_"), justify="right", overflow="fold")
    out.add_column("best epoch", justify="right", overflow="fold")
    for row in folds.iter_rows(named=True):
        out.add_row(str(row["fold"]), *(cell(row[c]) for c in tests), cell(row["best_epoch"]))
    if folds.height:
        values = {c: folds[c].cast(pl.Float64).fill_nan(None) for c in tests}
        out.add_section()
        out.add_row("mean", *(cell(values[c].mean()) for c in tests), "", style="bold")
        out.add_row("std", *(cell(values[c].std()) for c in tests), "")
    return out


def evaluations_table(con, path: Path, limit: int):
    """One row per evaluation (``fvc evaluate``): the run, the table it scored, the folds' mean score overall."""
    if "evaluations" not in {row[0] for row in con.execute("SHOW TABLES").fetchall()}:
        raise UserError(f"{path}: no evaluations recorded yet (fvc evaluate RUN_DIR TABLE --name NAME records them)")
    frame = con.sql(
        "SELECT r.model, r.experiment, e.run_id, e.name, e.dataset, e.layout, e.split, e.aggregation, e.n, "
        "e.test_auc, e.test_frame_roc_auc, e.test_accuracy, e.test_eer, e.evaluated_at FROM evaluations e "
        "JOIN runs r USING (run_id) WHERE e.scope = 'overall' AND e.scored_by = 'mean' "
        "ORDER BY e.evaluated_at, e.name").pl()
    from rich.table import Table

    out = Table(title=f"evaluations in {path}: the folds' mean score, all videos",
                caption="per method and per fold: fvc results 'SELECT * FROM evaluations'")
    out.add_column("run\nmodel", no_wrap=True)
    out.add_column("name\nlayout", min_width=8, overflow="fold")
    out.add_column("aggregation", min_width=11, overflow="fold")
    for name in ("n", "auc", "frame auc", "acc", "eer"):
        out.add_column(name, justify="right", no_wrap=True)
    for row in frame.head(limit).iter_rows(named=True):
        split = f" ({row['split']})" if row["split"] else ""
        out.add_row(f"{row['run_id'][:8]}\n[dim]{row['model']}[/]",
                    f"{row['name']}{split}\n[dim]{row['layout'] or '-'}[/]", cell(row["aggregation"]), cell(row["n"]),
                    *(cell(row[c]) for c in ("test_auc", "test_frame_roc_auc", "test_accuracy", "test_eer")))
    if frame.height > limit:
        out.caption = f"{frame.height - limit} more evaluations not shown (--limit)"
    return out


def runs_table(frame, title: str, limit: int):
    """Runs side by side, oldest first: mean (± std below it) over each run's folds, in 80 columns."""
    from rich.table import Table

    out = Table(title=title, caption="all columns: fvc results 'SELECT * FROM run_results'")
    out.add_column("run", no_wrap=True)
    out.add_column("model\nexperiment", min_width=10, overflow="fold")
    out.add_column("folds\nstatus", no_wrap=True)
    for name in RUN_METRICS:
        out.add_column(name.removeprefix("test_").replace("accuracy", "acc"), justify="right", no_wrap=True)
    for row in frame.head(limit).iter_rows(named=True):
        out.add_row(
            row["run_id"][:8], f"{row['model']}\n[dim]{row['experiment']}[/]",
            f"{row['folds_done']}/{row['folds']}\n{row['status']}",
            *(mean_std(row[f"{m}_mean"], row[f"{m}_std"]) for m in RUN_METRICS),
        )
    if frame.height > limit:
        out.caption = f"{frame.height - limit} more runs not shown (--limit)"
    return out


def table(frame, title: str, limit: int | None):
    """Any query's result; long values wrap rather than being cut, so no digit is lost."""
    from rich.table import Table

    out = Table(title=title)
    numeric = {name for name, dtype in frame.schema.items() if dtype.is_numeric()}
    for name in frame.columns:
        out.add_column(name, justify="right" if name in numeric else "left", overflow="fold")
    shown = frame if limit is None else frame.head(limit)
    for row in shown.iter_rows():
        out.add_row(*(cell(v) for v in row))
    if limit is not None and frame.height > limit:
        out.caption = f"{frame.height - limit} more rows not shown (--limit)"
    return out


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        # Learning rates such as 5e-6 would read 0.0000 at four decimals.
        return f"{value:.3g}" if 0 < abs(value) < 1e-2 else f"{value:.4f}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def mean_std(mean: float | None, std: float | None) -> str:
    if mean is None or math.isnan(mean):
        return "-"
    if std is None or math.isnan(std):
        return f"{mean:.3f}"
    return f"{mean:.3f}\n±{std:.3f}"
