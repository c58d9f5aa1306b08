"""The robustness grid of ``fvc evaluate --perturb``: metrics per (perturbation, level), per fold and overall.

Each (perturbation, level) is an evaluation of its own, ``eval/<NAME>+<perturbation>-<level>/`` (its
metrics.json and predictions.parquet, told to the trackers like any evaluation: an MLflow run
``eval/<NAME>+blur-3``, DuckDB ``evaluations`` rows whose protocol names the perturbation); a user's
``--name`` cannot contain ``+``, so none of these folders is ever one of the user's evaluations.
Beside the clean evaluation, ``eval/<NAME>/robustness.json`` and ``robustness.parquet`` gather them: one row
per (perturbation, level, scored_by), the clean score as perturbation ``none``, level 0.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fvc_core.contract import write_atomic

if TYPE_CHECKING:
    from rich.console import Console

    from fvc_core.contract import RunFolds
    from fvc_loaders.evaluate import EvalTable
    from fvc_loaders.perturb import Perturbed

GRID_METRICS = ("roc_auc", "eer", "accuracy", "average_precision", "ece_15", "brier", "log_loss")
CLEAN = "none"


def grid_rows(metrics: dict[str, Any], perturbation: str, level: int, parameter: Any) -> list[dict[str, Any]]:
    """The rows of one evaluation (its metrics.json content): the folds' mean score, then each fold's model,
    then the mean and std over the fold models."""
    overall = metrics["overall"]
    base = {"perturbation": perturbation, "level": level, "parameter": None if parameter is None else float(parameter)}
    rows = [{**base, "scored_by": "mean", **_numbers(overall["fold_mean_score"])}]
    for fold, values in sorted(overall["folds"].items(), key=lambda kv: int(kv[0])):
        rows.append({**base, "scored_by": f"fold_{fold}", **_numbers(values)})
    for stat in ("mean", "std"):
        rows.append({**base, "scored_by": f"over_folds_{stat}", **_numbers(overall["over_folds"][stat]),
                     "n": overall["fold_mean_score"].get("n")})
    return rows


def _numbers(values: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in GRID_METRICS:
        value = values.get(key)
        out[key] = None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
    out["n"] = values.get("n")
    return out


def evaluate_grid(run_dir: Path, table: EvalTable, clean: dict[str, Any], perturbs: list[Perturbed], *,
                  split: str | None, device: str, folds: RunFolds, console: Console) -> list[dict[str, Any]]:
    """Evaluate ``table`` under each of ``perturbs``; write eval/<name>/robustness.{json,parquet} beside the
    ``clean`` evaluation (its metrics.json content) and print AUC per perturbation and level."""
    import polars as pl

    from fvc_core.contract import ownership, plain
    from fvc_loaders.evaluate import EVAL_WAY_OUT, EVALUATION, evaluate

    rows = grid_rows(clean, CLEAN, 0, None)
    evaluations = [{"perturbation": CLEAN, "level": 0, "name": table.name}]
    for item in perturbs:
        name = f"{table.name}+{item.name}"
        console.print(f"scoring {table.name} under {item.perturbation.name} level {item.level} "
                      f"({item.perturbation.parameter(item.level)} {getattr(item.perturbation.value, 'unit', '')})",
                      highlight=False)
        metrics = evaluate(run_dir, replace(table, name=name), split=split, device=device, folds=folds,
                           perturbed=item)
        rows += grid_rows(metrics, item.perturbation.name, item.level, _parameter(item))
        evaluations.append({"perturbation": item.perturbation.name, "level": item.level, "name": name,
                            **{k: v for k, v in item.record().items() if k not in ("name", "level")}})
    out_dir = Path(run_dir) / "eval" / table.name
    grid = pl.DataFrame(rows, schema={"perturbation": pl.String, "level": pl.Int64, "parameter": pl.Float64,
                                      "scored_by": pl.String, **dict.fromkeys(GRID_METRICS, pl.Float64),
                                      "n": pl.Int64})
    document = {"table": table.name, "clean": table.name, "evaluations": evaluations, "metrics": list(GRID_METRICS),
                "rows": rows, "protocol": clean.get("protocol")}
    ownership.claim(out_dir, EVALUATION, way_out=EVAL_WAY_OUT)
    with ownership.os_errors(out_dir):
        write_atomic(out_dir / "robustness.parquet", grid.write_parquet, per_process=True)
        write_atomic(out_dir / "robustness.json", json.dumps(plain(document), indent=2, allow_nan=False) + "\n",
                     per_process=True)
    _print(console, table.name, rows)
    return rows


def _parameter(item: Perturbed) -> float | None:
    value = item.perturbation.parameter(item.level)
    return float(value) if isinstance(value, (int, float)) else None


def _print(console: Console, name: str, rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    mean = [r for r in rows if r["scored_by"] == "mean"]
    levels = sorted({r["level"] for r in mean if r["perturbation"] != CLEAN})
    clean = next(r for r in mean if r["perturbation"] == CLEAN)
    table = Table(title=f"{name}: ROC AUC of the folds' mean score under each perturbation "
                        f"(clean {_cell(clean['roc_auc'])}, ECE {_cell(clean['ece_15'])})")
    table.add_column("perturbation")
    for level in levels:
        table.add_column(f"level {level}", justify="right")
    for perturbation in dict.fromkeys(r["perturbation"] for r in mean if r["perturbation"] != CLEAN):
        by_level = {r["level"]: r for r in mean if r["perturbation"] == perturbation}
        table.add_row(perturbation, *(_cell(by_level[lv]["roc_auc"]) if lv in by_level else "" for lv in levels))
    console.print(table)


def _cell(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"
