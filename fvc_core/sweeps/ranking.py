"""A sweep's points side by side, ranked by the validation metric the trainer chose epochs on.

Never by a test metric: the test part of a fold is what the chosen point is reported on, and a
point chosen on it would report a number it was picked for (DeepfakeBench issues #91, #186). The
numbers come from the point folders' own records (each fold's metrics.json), so the ranking of
a sweep killed half-way, resumed, or grown is what its folders hold now.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.table import Table

from fvc_core.atomic import write_atomic
from fvc_core.tracking.metric_names import LOWER_IS_BETTER, SCORE_METRICS, VAL_METRICS

SHOWN_TEST = {"roc_auc": "auc", "accuracy": "acc"}
# The validation metrics that are rates or scores in [0, 1] (val_eer too, though lower is better):
# their interval is clipped to it. A loss, or a plugin trainer's metric fvc does not know, is not.
BOUNDED = tuple(m for m in VAL_METRICS if m != "val_loss")


@dataclass
class Selection:
    metric: str
    mode: str
    """min or max."""


def selection_of(config: Any) -> Selection | None:
    """The trainer's epoch-choosing metric (``early_stopping.metric``), or None for a trainer without one."""
    stopping = getattr(config.trainer.config, "early_stopping", None)
    if stopping is None or not hasattr(stopping, "metric"):
        return None
    mode = stopping.resolved_mode() if hasattr(stopping, "resolved_mode") else \
        ("min" if stopping.metric in LOWER_IS_BETTER else "max")
    return Selection(stopping.metric, mode)


def _folds(run_dir: Path) -> list[dict[str, Any]]:
    """Each finished fold's metrics.json (it is written last: its presence marks the fold finished)."""
    out = []
    for path in sorted([*run_dir.glob("fold_*/metrics.json"), *run_dir.glob("repeat_*/fold_*/metrics.json")]):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            out.append(data)
    return out


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def _stats(values: list[float], ratio: float, clip: bool) -> dict[str, float]:
    """Mean, sample std and a 95 % interval of the mean (Student's t, widened by Nadeau-Bengio's
    ``ratio`` for the overlapping training parts of cross-validation folds)."""
    x = [v for v in values if not math.isnan(v)]
    out = {"mean": math.nan, "std": math.nan, "ci95_low": math.nan, "ci95_high": math.nan}
    if not x:
        return out
    mean = sum(x) / len(x)
    out["mean"] = mean
    if len(x) < 2:
        return out
    out["std"] = math.sqrt(sum((v - mean) ** 2 for v in x) / (len(x) - 1))
    from fvc_core.fold_statistics import confidence_interval

    # the interval trainer.repeats reports; score metrics live in [0, 1], a loss does not
    out["ci95_low"], out["ci95_high"] = confidence_interval(x, ratio, clip=clip)
    return out


def rank(sweep: str, entries: list[dict[str, Any]], selection: Selection | None) -> list[dict[str, Any]]:
    """One row per configuration, best first; points that differ only in ``seed`` are one configuration.

    ``entries``: per point ``id``, ``varied`` (key -> value), ``run_dir``, ``folds`` (expected),
    ``k`` (folds per cross-validation), ``config_hash``, ``wall_s``; optionally ``fold_records`` (each
    finished fold's metrics.json as a dict) and ``status``, for a reader that has them from elsewhere
    (``fvc results --sweep`` from the DuckDB file), else they are read from ``run_dir``.
    """
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        key = json.dumps({k: v for k, v in entry["varied"].items() if k != "seed"}, sort_keys=True, default=str)
        groups.setdefault(key, []).append(entry)
    rows = []
    for members in groups.values():
        folds = [f for m in members
                 for f in (m["fold_records"] if "fold_records" in m else _folds(Path(m["run_dir"])))]
        k = max(1, int(members[0].get("k", 1)))
        ratio = 1 / (k - 1) if k > 1 else 0.0
        row: dict[str, Any] = {
            "sweep": sweep,
            "point": " ".join(m["id"] for m in members),
            **{key: value for key, value in members[0]["varied"].items() if key != "seed"},
        }
        if len(members) > 1:
            row["seeds"] = len(members)
        chosen = [_num(f.get("best_metric_value")) if selection and f.get("best_metric") == selection.metric
                  else math.nan for f in folds]
        if selection is not None:
            for name, value in _stats(chosen, ratio, clip=selection.metric in BOUNDED).items():
                if name.startswith("ci95") and len(folds) <= k:
                    continue  # one cross-validation: mean ± std over its folds says it
                row[f"{selection.metric}_{name}"] = value
        for metric in SCORE_METRICS:
            stats = _stats([_num(f.get(metric)) for f in folds], ratio, clip=True)
            row[f"test_{metric}_mean"], row[f"test_{metric}_std"] = stats["mean"], stats["std"]
            if len(folds) > k:  # several seeds or repeats: an interval says how far the mean may be off
                row[f"test_{metric}_ci95_low"], row[f"test_{metric}_ci95_high"] = \
                    stats["ci95_low"], stats["ci95_high"]
        statuses = [str(m["status"]) if "status" in m else _status(Path(m["run_dir"])) for m in members]
        row.update(
            folds_done=len(folds), folds=sum(int(m["folds"]) for m in members),
            status=statuses[0] if len(set(statuses)) == 1 else ",".join(statuses),
            # None where no time is known (DuckDB has none for a point not finished): a dash, never 0 s
            wall_s=sum(walls) if (walls := [float(m["wall_s"]) for m in members if m.get("wall_s") is not None])
            else math.nan,
            run_dir=" ".join(str(m["run_dir"]) for m in members),
            config_hash=" ".join(m["config_hash"] for m in members),
        )
        if selection is not None:
            row["selection_metric"], row["selection_mode"] = selection.metric, selection.mode
        rows.append(row)

    def order(row: dict[str, Any]) -> tuple[int, float]:
        value = row.get(f"{selection.metric}_mean", math.nan) if selection else math.nan
        if math.isnan(value):
            return (1, 0.0)  # nothing to rank it by yet: after every point that has a number
        return (0, value if selection.mode == "min" else -value)

    rows.sort(key=order)
    for i, row in enumerate(rows, 1):
        row["rank"] = i if selection and not math.isnan(row.get(f"{selection.metric}_mean", math.nan)) else None
    return rows


def _status(run_dir: Path) -> str:
    try:
        return str(json.loads((run_dir / "run.json").read_text()).get("status", "unknown"))
    except (OSError, ValueError):
        return "pending"


def _column(values: list[Any]) -> list[Any]:
    """One parquet type per column: numbers stay numbers, anything mixed becomes its YAML text."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
        return [None if v is None else float(v) for v in values]
    if all(isinstance(v, str) for v in present):
        return values
    return [None if v is None else json.dumps(v, default=str) for v in values]


def write(rows: list[dict[str, Any]], folder: Path, meta: dict[str, Any]) -> Path:
    """sweep.parquet (one row per configuration, best first) and sweep.json (the same, with how it was chosen)."""
    import polars as pl

    columns = list(dict.fromkeys(["rank", *(k for row in rows for k in row)]))
    frame = pl.DataFrame({c: _column([row.get(c) for row in rows]) for c in columns}, strict=False)
    path = folder / "sweep.parquet"
    write_atomic(path, frame.write_parquet)
    clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()} for row in rows]
    write_atomic(folder / "sweep.json", json.dumps({**meta, "ranking": clean}, indent=2, default=str) + "\n")
    return path


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}" if 0 < abs(value) < 1e-2 else f"{value:.4f}"
    return str(value)


def _seconds(value: Any) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0f}"


def _mean_std(row: dict[str, Any], prefix: str) -> str:
    mean, std = row.get(f"{prefix}_mean", math.nan), row.get(f"{prefix}_std", math.nan)
    if mean is None or math.isnan(mean):
        return "-"
    text = _cell(mean) if std is None or math.isnan(std) else f"{_cell(mean)}\n±{_cell(std)}"
    low, high = row.get(f"{prefix}_ci95_low"), row.get(f"{prefix}_ci95_high")
    if low is not None and not math.isnan(low):
        text += f"\n[{_cell(low)},\n {_cell(high)}]"
    return text


def table(sweep: str, rows: list[dict[str, Any]], keys: list[str], selection: Selection | None,
          folder: Path | None = None, source: str | None = None) -> Table:
    """Best first, in 80 columns: the varied keys (the point folder is named after them), the choosing
    validation metric, test metrics beside it. ``source``: where the numbers were read, for the caption."""
    chooser = f"{selection.metric}, {'lower' if selection.mode == 'min' else 'higher'} is better" \
        if selection else "nothing (the trainer has no validation metric): not ranked"
    many = any("seeds" in r for r in rows)
    out = Table(title=f"sweep {sweep}: {len(rows)} configurations, chosen by validation {chooser}",
                caption="test metrics are shown, never used to choose; mean ± std over folds"
                        + (" and seeds, [95 % CI]" if many else "")
                        + (f"; point folders in {folder}" if folder else "")
                        + (f"; {source}" if source else ""))
    out.add_column("#", justify="right")
    short = _headers(keys)
    for key in keys:
        out.add_column(short[key], overflow="fold")
    if many:
        out.add_column("seeds", justify="right")
    if selection is not None:
        out.add_column(f"val\n{selection.metric.removeprefix('val_')}", justify="right", style="bold")
    for header in SHOWN_TEST.values():
        out.add_column(f"test\n{header}", justify="right")
    out.add_column("folds", justify="right")
    out.add_column("wall s", justify="right")
    out.add_column("status", no_wrap=True)
    for row in rows:
        out.add_row(
            _cell(row.get("rank")), *(_value_cell(row.get(k)) for k in keys),
            *([_cell(row.get("seeds"))] if many else []),
            *([_mean_std(row, selection.metric)] if selection else []),
            *(_mean_std(row, f"test_{m}") for m in SHOWN_TEST),
            f"{row['folds_done']}/{row['folds']}", _seconds(row.get("wall_s")), row["status"],
        )
    return out


def _value_cell(value: Any) -> str:
    """A swept value as the point's id shows it (4 significant digits): 1e+08, not 100000000.0000."""
    return f"{value:.4g}" if isinstance(value, float) and not math.isnan(value) else _cell(value)


def _headers(keys: list[str]) -> dict[str, str]:
    from fvc_core.sweeps.spec import short_names

    return short_names(keys)
