"""The ranking chooses on validation alone: where validation and test disagree, validation wins."""

from __future__ import annotations

import json
import math

from fvc_core.sweeps.ranking import Selection, rank
from fvc_core.training.outputs import write_json


def point(tmp_path, name, val, test_auc, folds=2, best_metric="val_loss"):
    run_dir = tmp_path / name
    for k in range(folds):
        (run_dir / f"fold_{k}").mkdir(parents=True)
        write_json(run_dir / f"fold_{k}" / "metrics.json",
                   {"roc_auc": test_auc[k], "accuracy": 0.5, "best_epoch": 1, "best_metric": best_metric,
                    "best_metric_value": val[k]})
    write_json(run_dir / "run.json", {"status": "finished"})
    return {"id": name, "varied": {"trainer.lr": float(name)}, "run_dir": run_dir, "folds": 2, "k": 2,
            "config_hash": name, "wall_s": 1.0}


def test_the_point_best_on_validation_ranks_first_even_when_another_is_best_on_test(tmp_path):
    entries = [point(tmp_path, "0.1", [0.30, 0.50], [0.99, 0.97]),   # best on test, worse on validation
               point(tmp_path, "0.2", [0.20, 0.40], [0.60, 0.62])]
    rows = rank("s", entries, Selection("val_loss", "min"))
    assert [r["point"] for r in rows] == ["0.2", "0.1"] and [r["rank"] for r in rows] == [1, 2]
    assert math.isclose(rows[0]["val_loss_mean"], 0.30) and math.isclose(rows[1]["test_roc_auc_mean"], 0.98)
    # A metric maximised (val_auc) ranks the other way; a fold chosen on another metric counts for nothing.
    rows = rank("s", entries, Selection("val_loss", "max"))
    assert [r["point"] for r in rows] == ["0.1", "0.2"]
    rows = rank("s", entries, Selection("val_auc", "max"))
    assert [r["rank"] for r in rows] == [None, None]


def test_points_differing_only_in_seed_are_one_configuration_with_an_interval(tmp_path):
    entries = [point(tmp_path, f"{seed}", [0.2 + seed / 100, 0.3], [0.8, 0.7]) for seed in (1, 2, 3)]
    for entry, seed in zip(entries, (1, 2, 3), strict=True):
        entry["varied"] = {"seed": seed}
    (row,) = rank("s", entries, Selection("val_loss", "min"))
    assert row["seeds"] == 3 and row["folds_done"] == 6 and row["point"] == "1 2 3"
    assert row["val_loss_ci95_low"] < row["val_loss_mean"] < row["val_loss_ci95_high"]
    assert row["test_roc_auc_ci95_low"] < 0.75 < row["test_roc_auc_ci95_high"]
    assert json.dumps(row, default=str)


def test_a_point_with_no_known_wall_time_shows_a_dash_not_zero_seconds(tmp_path):
    from rich.console import Console

    from fvc_core.sweeps.ranking import table

    timed, untimed = point(tmp_path, "0.1", [0.3, 0.5], [0.9, 0.9]), point(tmp_path, "0.2", [0.2, 0.4], [0.6, 0.6])
    untimed["wall_s"] = None  # what DuckDB gives for a point not finished
    timed["wall_s"] = 42.0
    rows = rank("s", [timed, untimed], Selection("val_loss", "min"))
    assert math.isnan(rows[0]["wall_s"]) and rows[1]["wall_s"] == 42.0
    console = Console(width=200, record=True)
    console.print(table("s", rows, ["trainer.lr"], Selection("val_loss", "min")))
    lines = {line.split("│")[2].strip(): line.split("│")[-3].strip() for line in console.export_text().splitlines()
             if line.startswith("│ ") and line[2].isdigit()}
    assert lines == {"0.2": "-", "0.1": "42"}
