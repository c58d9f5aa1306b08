"""``fvc evaluate RUN_DIR TABLE --name NAME``: a finished run's fold models on another table.

Writes ``RUN_DIR/eval/<NAME>/metrics.json`` and ``predictions.parquet`` (each written to a temporary
file and renamed: a file there is always whole), into a folder fvc marks as its own
(``fvc_core.ownership``): a folder of the user's there is refused, never overwritten. Metrics are
those of training (``compute_metrics``): for the mean of the folds' fake probabilities (what
``fvc predict`` gives), for each fold's model alone, and their mean ± std over folds; overall, and per
fake ``method`` against all the table's real videos, from fvc's scores only: the table's own
columns come through under ``table_<name>`` (``with_scores``). The protocol (table and its fingerprint,
layout, split, frames, size, sampler, how scores are aggregated, the folds used and any missing) is
recorded beside the numbers.
Several tables (``--table NAME=PATH``) and several runs print the train-on/test-on matrix.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fvc_core.contract import UserError, file_sha256, write_atomic
from fvc_loaders.index import table_layout

if TYPE_CHECKING:
    import polars as pl

    from fvc_core.contract import RunFolds
    from fvc_loaders.perturb import Perturbed

EVALUATION = "evaluation"  # the ownership kind of an eval/<NAME> folder
EVAL_WAY_OUT = "choose another --name, or move that folder away"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHOWN = 5
FOLD_AGGREGATION = "mean of the fold models' fake probabilities"
VIDEO_SCORE = "each fold model's fake probability of the video, aggregated from its frames (see aggregation)"


@dataclass(frozen=True)
class EvalTable:
    name: str
    path: Path
    # A table made by another tool names its columns its own way (DFDC's CSVs: filename, label).
    video_column: str = "video_path"
    label_column: str = "label"


def parse_table(text: str) -> EvalTable:
    name, sep, path = text.partition("=")
    if not sep or not path:
        raise UserError(f"--table {text!r}: expected NAME=PATH, e.g. --table celebdf=tables/celebdf.parquet")
    return EvalTable(check_name(name, f"--table {text!r}"), Path(path))


def check_name(name: str, where: str) -> str:
    if not _NAME.match(name):
        raise UserError(f"{where}: the name {name!r} becomes a folder eval/<NAME>: use letters, digits, . _ -")
    return name


# A column of the user's table is carried into predictions.parquet under this prefix, never under its
# own name: fvc's numbers (score, prediction, error, frame_scores...) keep theirs, so no column of a
# table (an earlier predictions.parquet, `fvc predict -o` output) can stand in for one fvc computes,
# whatever fvc computes in a later version. No name fvc writes starts with it.
TABLE_PREFIX = "table_"
# What fvc reads from the table itself, under fvc's names (the path made absolute, the label 0/1).
TABLE_KEYS = ("video_path", "label", "method")


def load_eval_table(path: Path, split: str | None, video_column: str = "video_path",
                    label_column: str = "label") -> pl.DataFrame:
    """``video_path`` (absolute), ``label`` 0/1, ``method`` (or null), then every column of the table
    under ``table_<name>`` (``TABLE_PREFIX``); the rows of ``split`` only when given. Every missing video
    is listed (one line each), before any scoring. ``video_column``/``label_column``: where the table
    keeps them."""
    import polars as pl

    from fvc_core.contract import labels_as_classes
    from fvc_loaders.dataset import read_table, resolve_paths

    raw = read_table(path)
    for option, col in (("--video-column", video_column), ("--label-column", label_column)):
        if col not in raw.columns:
            raise UserError(f"{path}: no column {col!r} (columns: {', '.join(raw.columns) or 'none'}; "
                            f"{option} names another)")
    if split is not None:
        if "split" not in raw.columns:
            raise UserError(f"{path}: --split {split}: the table has no split column (fvc index --layout adds one)")
        raw = raw.filter(pl.col("split") == split)
        if raw.height == 0:
            raise UserError(f"{path}: no rows with split {split!r}")
    if raw.height == 0:
        raise UserError(f"{path}: the table has no rows")
    if raw[video_column].dtype != pl.String or raw[video_column].is_null().any():
        raise UserError(f"{path}: column {video_column!r} must hold a path as text in every row")
    video_path = resolve_paths(raw[video_column], path.parent)
    if video_path.is_duplicated().any():
        twice = sorted(set(video_path.filter(video_path.is_duplicated()).to_list()))
        raise UserError(f"{path}: lists the same video twice: {', '.join(twice[:_SHOWN])}")
    if raw[label_column].is_null().any():
        rows = raw[label_column].is_null().arg_true().to_list()[:_SHOWN]
        raise UserError(f"{path}: column {label_column!r} is empty in rows {rows}")
    label = labels_as_classes(raw[label_column], {"real": 0, "fake": 1}, f"{path}: column {label_column!r}")
    missing = [p for p in video_path.to_list() if not os.path.isfile(p)]
    if missing:
        lines = [f"{path}: video {p} not found" for p in missing[:30]]
        if len(missing) > 30:
            lines.append(f"{path}: ... and {len(missing) - 30} more videos not found")
        raise UserError("\n".join(lines))
    method = raw["method"].cast(pl.String) if "method" in raw.columns else pl.Series([None] * raw.height,
                                                                                     dtype=pl.String)
    # The table's own columns, video_path and label as the user wrote them included, under the prefix.
    own = [raw[c].alias(TABLE_PREFIX + c) for c in raw.columns]
    return pl.DataFrame([video_path.alias("video_path"), label.alias("label"), method.alias("method"), *own])


def with_scores(table: pl.DataFrame, scores: pl.DataFrame) -> pl.DataFrame:
    """The table's rows with fvc's scores: fvc's columns under fvc's names (``TABLE_KEYS``, then
    ``score_videos``'s), the table's own after them, each under ``TABLE_PREFIX``."""
    import polars as pl

    theirs = [c for c in table.columns if c not in TABLE_KEYS]
    clash = [c for c in theirs if not c.startswith(TABLE_PREFIX)] + [c for c in scores.columns
                                                                     if c.startswith(TABLE_PREFIX)]
    if clash:  # a caller that skipped load_eval_table: refuse rather than let one column stand in for another
        raise ValueError(f"columns {clash} would mix the table's columns with fvc's")
    joined = table.select(TABLE_KEYS).join(scores, on="video_path", how="left", validate="1:1",
                                           maintain_order="left")
    if joined.height != table.height or joined["video_path"].to_list() != table["video_path"].to_list():
        raise ValueError("the scores do not line up with the table's rows")
    return pl.concat([joined, table.select(theirs)], how="horizontal")


def metric_block(labels: list[int], scores: dict[str, list[float]], threshold: float,
                 frames: dict[str, list[list[float]]] | None = None) -> dict[str, Any]:
    """Metrics of the folds' mean score, of each fold's own score, and their mean ± std over folds;
    with ``frames`` (the same keys as ``scores``, each video's frame scores) the frame-level ROC AUC too."""
    from fvc_core.contract import compute_metrics, frame_metrics, summarize

    def one(key: str) -> dict[str, Any]:
        return {**compute_metrics(labels, scores[key], threshold),
                **frame_metrics(labels, frames[key] if frames else None)}

    folds = {k[len("score_fold_"):]: one(k) for k in scores if k.startswith("score_fold_")}
    names = ("accuracy", "precision", "recall", "f1_score", "roc_auc", "average_precision", "eer",
             "ece_15", "brier", "log_loss", *(("frame_roc_auc",) if frames else ()))
    mean, std = summarize(list(folds.values()), names)
    return {"fold_mean_score": one("score"), "folds": folds, "over_folds": {"mean": mean, "std": std}}


def evaluation_metrics(frame: pl.DataFrame, threshold: float) -> dict[str, Any]:
    """Overall, and per fake method against every real video of the table (a real-only method has no
    fakes to rank, so it is only counted)."""
    import polars as pl

    columns = [c for c in frame.columns if c == "score" or c.startswith("score_fold_")]
    # score -> frame_scores, score_fold_<k> -> frame_scores_fold_<k>: the frames of the same model(s).
    frame_columns = {c: f"frame_{c}s" if c == "score" else c.replace("score_fold_", "frame_scores_fold_")
                     for c in columns}
    with_frames = all(f in frame.columns for f in frame_columns.values())

    def block(part: pl.DataFrame) -> dict[str, Any]:
        frames = {c: part[f].to_list() for c, f in frame_columns.items()} if with_frames else None
        return metric_block(part["label"].to_list(), {c: part[c].to_list() for c in columns}, threshold, frames)

    out: dict[str, Any] = {"overall": block(frame), "per_method": {}}
    reals = frame.filter(pl.col("label") == 0)
    fake_methods = sorted(m for m in frame.filter(pl.col("label") == 1)["method"].unique().to_list() if m)
    for method in fake_methods:
        out["per_method"][method] = block(pl.concat([reals, frame.filter((pl.col("label") == 1)
                                                                         & (pl.col("method") == method))]))
    out["real_methods"] = {m: n for m, n in reals.group_by("method").len().iter_rows() if m}
    return out


def calibrated(scores: pl.DataFrame, folds: RunFolds, threshold: float) -> tuple[pl.DataFrame, dict[str, Any]]:
    """Each fold model's scores through the temperature its fold fitted on its validation part
    (``trainer.calibration: temperature``, metrics.json's ``temperature``), as its test scores were; the
    folds' mean, and the prediction, from those. The model's own scores stay in ``score_uncalibrated``
    and ``score_uncalibrated_fold_<k>``. Unchanged for a run trained without it."""
    import polars as pl

    from fvc_core.contract import apply_temperature, read_json

    temperatures = {}
    for k, fold_dir in zip(folds.used, folds.dirs, strict=True):
        recorded = read_json(Path(fold_dir) / "metrics.json").get("temperature")
        if isinstance(recorded, (int, float)):
            temperatures[k] = float(recorded)
    if not temperatures:
        return scores, {"method": "none"}
    if set(temperatures) != set(folds.used):  # folds of one run are calibrated alike; anything else is not ours
        raise UserError(f"{folds.run_dir}: fold(s) {sorted(set(folds.used) - set(temperatures))} record no "
                        "temperature where the others do; retrain them (delete their folders, fvc run again)")
    columns = [f"score_fold_{k}" for k in folds.used]
    out = scores.with_columns(pl.col("score").alias("score_uncalibrated"),
                              *(pl.col(c).alias(c.replace("score_", "score_uncalibrated_", 1)) for c in columns))
    for k, column in zip(folds.used, columns, strict=True):
        values = out[column].to_list()
        kept = [i for i, v in enumerate(values) if v is not None]
        new = apply_temperature([values[i] for i in kept], temperatures[k])
        for i, v in zip(kept, new, strict=True):
            values[i] = v
        out = out.with_columns(pl.Series(column, values, dtype=pl.Float64))
    mean = pl.mean_horizontal(columns)
    out = out.with_columns(pl.when(pl.col("score").is_null()).then(None).otherwise(mean).alias("score"))
    out = out.with_columns(pl.when(pl.col("score").is_null()).then(None)
                           .when(pl.col("score") >= threshold).then(pl.lit("fake")).otherwise(pl.lit("real"))
                           .alias("prediction"))
    return out, {"method": "temperature", "temperature": {str(k): t for k, t in temperatures.items()},
                 "fitted_on": "each fold's validation part", "applied_to": "each fold model's score, then the mean"}


def evaluate(run_dir: str | Path, table: EvalTable, *, split: str | None = None,
             device: str = "cpu", track: bool = True, folds: RunFolds | None = None,
             perturbed: Perturbed | None = None) -> dict[str, Any]:
    """Score ``table`` with the run's finished folds (``folds``, a ``run_folds`` of the run, else found
    now); write and return eval/<name>/metrics.json's content, and (``track``) tell the run's trackers
    (an MLflow run eval/<name>, a DuckDB ``evaluations`` row...). The protocol records the folds used and
    those of the run that had not finished. ``perturbed``: every video read with that damage
    (``fvc_loaders.perturb``), recorded in the protocol."""
    import polars as pl

    from fvc_core.contract import NO_FRAME_SCORES, open_run, ownership, plain
    from fvc_loaders.dataset import prepared_with

    run_dir = Path(run_dir)
    run = open_run(run_dir)
    # The run's dataset plugin rebuilt from its config.yaml: clips read exactly as in training.
    dataset, config = run.dataset(), run.config
    if perturbed is not None:
        from fvc_loaders.perturb import PerturbedDataset

        dataset = PerturbedDataset(dataset, perturbed)
    folds = folds if folds is not None else run.run_folds
    out_dir = run_dir / "eval" / table.name
    # Refused before minutes of scoring, not after.
    ownership.check_claimable(out_dir, EVALUATION, way_out=EVAL_WAY_OUT)
    frame = load_eval_table(table.path, split, table.video_column, table.label_column)
    threshold = float((config.get("trainer") or {}).get("threshold", 0.5))

    scores = run.score(frame["video_path"].to_list(), device=device, dataset=dataset, frames=True, folds=folds)
    scores, calibration = calibrated(scores, folds, threshold)
    predictions = with_scores(frame, scores)
    scored = predictions.filter(pl.col("error").is_null())
    skipped = predictions.filter(pl.col("error").is_not_null())
    if scored.height == 0:
        raise UserError(f"{table.path}: no video could be read ({skipped.height} skipped under on_bad_video: skip)")

    # How the run's reader makes a clip; the training table it names is not the one scored here, and
    # score_videos reads without augmentation whatever training did.
    trained_with = dataset.protocol()
    clips = {k: v for k, v in trained_with.items() if k not in ("metadata", "dataset", "layout", "prepare")
             } | {"augment": False}
    with_frames = "frame_scores" in scored.columns
    protocol = {
        "table": str(table.path.resolve()), "table_sha256": file_sha256(table.path), "dataset": table.name,
        "layout": table_layout(table.path), "prepare": prepared_with(table.path), "split": split, "clips": clips,
        "video_score": VIDEO_SCORE, "aggregation": run.aggregation.describe(),
        "frame_scores": "each frame's fake probability; frame_roc_auc pools every frame of every video" if
        with_frames else NO_FRAME_SCORES, "fold_aggregation": FOLD_AGGREGATION, "threshold": threshold,
        "folds": list(folds.used), "folds_expected": folds.expected, "folds_missing": list(folds.missing),
        "device": device, "perturbation": perturbed.record() if perturbed is not None else None,
        "calibration": calibration,
        "trained_on": (config.get("data") or {}).get("metadata") or (config.get("data") or {}).get("name"),
        "trained_layout": trained_with.get("layout"), "trained_prepare": trained_with.get("prepare"),
        "trained_split": {k: (config.get("trainer") or {}).get(k) for k in ("split", "folds", "val_fraction")}
        | {"seed": config.get("seed")},
    }
    metrics = {"name": table.name, "run_dir": str(run_dir.resolve()), "protocol": protocol,
               **evaluation_metrics(scored, threshold), "n_videos": predictions.height,
               "skipped": [{"video_path": p, "error": e} for p, e in skipped.select("video_path", "error").iter_rows()]}
    ownership.claim(out_dir, EVALUATION, way_out=EVAL_WAY_OUT)
    with ownership.os_errors(out_dir):
        # Which folds made the scores travels with the file too (Parquet key-value metadata).
        used = {"fvc_folds": json.dumps(list(folds.used)), "fvc_folds_missing": json.dumps(list(folds.missing))}
        write_atomic(out_dir / "predictions.parquet", lambda tmp: predictions.write_parquet(tmp, metadata=used),
                     per_process=True)
        write_atomic(out_dir / "metrics.json", json.dumps(plain(metrics), indent=2, allow_nan=False) + "\n",
                     per_process=True)
    if track:
        from fvc_core.contract import Evaluation, get_console, track_evaluation

        track_evaluation(run_dir, Evaluation(table.name, plain(metrics), out_dir, plain(protocol)), get_console())
    return metrics


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="RUN_DIR|TABLE",
                        help="run folders (<output_dir>/<model>) and at most one table (with --name)")
    parser.add_argument("--name", help="name of the positional TABLE: results go to RUN_DIR/eval/NAME "
                                       "(default: the table's file name without suffix)")
    parser.add_argument("--table", action="append", default=[], metavar="NAME=PATH",
                        help="another table to evaluate on, under its name; repeatable (the matrix's columns)")
    parser.add_argument("--split", help="only the table rows of this split (e.g. test: a dataset's official "
                                        "test set, from fvc index --layout)")
    parser.add_argument("--video-column", default="video_path", metavar="COL",
                        help="the tables' column of video paths (default: %(default)s)")
    parser.add_argument("--label-column", default="label", metavar="COL",
                        help="the tables' column of labels: real/fake or 0/1, any case (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device for the models (default: %(default)s)")
    parser.add_argument("--perturb", action="append", default=[], metavar="SPEC",
                        help="also score every table under this damage, to real and fake videos alike: NAME "
                             "(every level), NAME:LEVELS (blur:1,3,5 or blur:1-5), deeperforensics (its seven at "
                             "levels 1-5), ffpp (c23, c40); repeatable. Results: eval/NAME+PERTURBATION-LEVEL/ and "
                             "eval/NAME/robustness.json (docs/evaluation.md)")
    parser.add_argument("--perturb-seed", type=int, default=0, metavar="N",
                        help="seed of the random damage (noise, block places), with each video's content")


def _targets(args: argparse.Namespace) -> tuple[list[Path], list[EvalTable]]:
    runs, files = [], []
    for item in args.paths:
        path = Path(item)
        if path.is_dir():
            runs.append(path)
        elif path.is_file():
            files.append(path)
        else:
            raise UserError(f"{path}: no such run folder or table")
    if len(files) > 1:
        raise UserError(f"{len(files)} tables given as arguments ({', '.join(map(str, files))}); "
                        "name each with --table NAME=PATH")
    tables = [parse_table(t) for t in args.table]
    if files:
        tables.insert(0, EvalTable(check_name(args.name or files[0].stem, "--name"), files[0]))
    elif args.name:
        raise UserError("--name names the positional TABLE, and none was given; use --table NAME=PATH")
    if not runs:
        raise UserError("no run folder given: fvc evaluate RUN_DIR TABLE --name NAME")
    if not tables:
        raise UserError("no table given: fvc evaluate RUN_DIR TABLE --name NAME, or --table NAME=PATH")
    names = [t.name for t in tables]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"table name {twice[0]!r} given twice; each table needs its own name")
    for table in tables:
        if not table.path.is_file():
            raise UserError(f"--table {table.name}={table.path}: table not found")
    return runs, [replace(t, video_column=args.video_column, label_column=args.label_column) for t in tables]


def _cell(metrics: dict[str, Any]) -> str:
    auc = metrics["overall"]["fold_mean_score"]["roc_auc"]
    over = metrics["overall"]["over_folds"]
    m, s = over["mean"]["roc_auc"], over["std"]["roc_auc"]
    if auc is None or auc != auc:
        return "n/a (one class)"
    folds = f" ({m:.3f} ± {s:.3f})" if s == s else ""
    protocol = metrics["protocol"]
    partial = (f" [{len(protocol['folds'])} of {protocol['folds_expected']} folds]"
               if protocol.get("folds_missing") else "")
    return f"{auc:.3f}{folds}{partial}"


def run_command(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from fvc_core.contract import get_console, open_run

    runs, tables = _targets(args)
    perturbs = []
    if args.perturb:  # every SPEC checked before minutes of scoring, not after
        from fvc_loaders.perturb import parse_specs

        perturbs = parse_specs(args.perturb, seed=args.perturb_seed)
    console = get_console()
    results: dict[tuple[Path, str], dict[str, Any]] = {}
    for run in runs:
        # A run with folds missing (killed, or still training) is scored with those that finished, as
        # `fvc predict` does and `fvc report` reports it: said here, recorded in metrics.json.
        folds = open_run(run).run_folds
        if (partial := folds.warning()) is not None:
            print(f"warning: {partial}", file=sys.stderr)
        for table in tables:
            metrics = evaluate(run, table, split=args.split, device=args.device, folds=folds)
            results[(run, table.name)] = metrics
            fm = metrics["overall"]["fold_mean_score"]
            auc = "n/a" if fm["roc_auc"] is None or fm["roc_auc"] != fm["roc_auc"] else f"{fm['roc_auc']:.3f}"
            frames = fm.get("frame_roc_auc")
            frame_auc = f", frame ROC AUC {frames:.3f}" if frames is not None and frames == frames else ""
            console.print(f"{escape(str(run / 'eval' / table.name / 'metrics.json'))}: {fm['n']} videos, "
                          f"ROC AUC {auc}{frame_auc}, accuracy {fm['accuracy']:.3f}")
            if metrics["skipped"]:
                console.print(f"[yellow]warning:[/] {len(metrics['skipped'])} videos of {table.name} could not be "
                              "read and are left out of its metrics (listed in metrics.json)")
            if perturbs:
                from fvc_loaders.robustness import evaluate_grid

                evaluate_grid(run, table, metrics, perturbs, split=args.split, device=args.device, folds=folds,
                              console=console)
    matrix = Table(title="ROC AUC of the folds' mean score (mean ± std of the fold models); rows: trained on, "
                         "columns: tested on")
    matrix.add_column("run (trained on)", overflow="fold")
    for table in tables:
        matrix.add_column(table.name, justify="right")
    for run in runs:
        trained = results[(run, tables[0].name)]["protocol"]["trained_on"]
        matrix.add_row(escape(f"{run} ({trained})"), *(_cell(results[(run, t.name)]) for t in tables))
    console.print(matrix)
    return 0
