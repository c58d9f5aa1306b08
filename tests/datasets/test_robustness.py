"""``fvc evaluate RUN TABLE --perturb SPEC``: the robustness grid of a real run, in files, DuckDB and the cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml

pytest.importorskip("fvc_naive_cnn")

from fvc_core.cli import main  # noqa: E402
from fvc_core.training.metrics import compute_metrics  # noqa: E402
from tests.datasets.miniature import tiny_video  # noqa: E402

FVC = str(Path(sys.executable).parent / "fvc")


def fvc(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.run([FVC, *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A 2-fold naive_cnn run (1 epoch, clips cached) on 6 real and 6 fake 32x32 videos."""
    root = tmp_path_factory.mktemp("robust")
    for i in range(6):
        tiny_video(root / "videos" / "real" / f"r{i}.mp4", fake=False, seed=i)
        tiny_video(root / "videos" / "fake" / f"f{i}.mp4", fake=True, seed=100 + i)
    table = root / "table.parquet"
    assert main(["index", str(root / "videos"), "-o", str(table)]) == 0
    config = {
        "experiment": "robust", "seed": 1, "output_dir": str(root / "runs"),
        "data": {"name": "metadata", "metadata": str(table), "num_frames": 2, "size": 32,
                 "cache": str(root / "cache")},
        "model": {"name": "naive_cnn", "chunk_size": 2},
        "trainer": {"name": "supervised", "folds": 2, "epochs": 1, "grad_accum": 1, "warmup_epochs": 0,
                    "num_workers": 0},
        "trackers": ["console", "duckdb", "mlflow"],
        "mlflow": {"log_plots": False},
    }
    (root / "experiment.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(root / "experiment.yaml")]) == 0
    return {"root": root, "run": root / "runs" / "naive_cnn", "table": table, "cache": root / "cache"}


def _entries(cache: Path) -> int:
    return sum(1 for _ in (cache / "clips").rglob("*.clip"))


def test_one_command_gives_the_grid_per_fold_and_overall_in_files_duckdb_and_mlflow(world):
    run, cache = world["run"], world["cache"]
    before = _entries(cache)
    done = fvc("evaluate", str(run), str(world["table"]), "--name", "mini", "--perturb", "blur:1,5",
               "--perturb", "c40")
    assert done.returncode == 0, done.stderr
    assert "ROC AUC of the folds' mean score under each perturbation" in done.stdout
    grid = pl.read_parquet(run / "eval/mini/robustness.parquet")
    document = json.loads((run / "eval/mini/robustness.json").read_text())
    assert [(e["perturbation"], e["level"]) for e in document["evaluations"]] == [
        ("none", 0), ("blur", 1), ("blur", 5), ("c40", 1)]
    for perturbation, level, name in (("blur", 1, "mini+blur-1"), ("blur", 5, "mini+blur-5"), ("c40", 1, "mini+c40-1")):
        metrics = json.loads((run / "eval" / name / "metrics.json").read_text())
        predictions = pl.read_parquet(run / "eval" / name / "predictions.parquet")
        assert metrics["protocol"]["perturbation"]["name"] == perturbation
        assert metrics["protocol"]["perturbation"]["level"] == level
        rows = grid.filter((pl.col("perturbation") == perturbation) & (pl.col("level") == level))
        assert set(rows["scored_by"]) == {"mean", "fold_0", "fold_1", "over_folds_mean", "over_folds_std"}
        # Every number of the grid is recomputable from that evaluation's predictions.
        labels = predictions["label"].to_list()
        for scored_by, column in (("mean", "score"), ("fold_1", "score_fold_1")):
            expected = compute_metrics(labels, predictions[column].to_list())
            row = rows.filter(pl.col("scored_by") == scored_by).row(0, named=True)
            for metric in ("roc_auc", "ece_15", "brier", "log_loss"):
                assert row[metric] == pytest.approx(expected[metric])
    assert json.loads((run / "eval/mini/metrics.json").read_text())["protocol"]["perturbation"] is None
    assert grid.filter(pl.col("perturbation") == "none")["level"].unique().to_list() == [0]
    # The perturbed scores differ from the clean ones: the damage reached the model.
    clean = pl.read_parquet(run / "eval/mini/predictions.parquet")["score"].to_list()
    blurred = pl.read_parquet(run / "eval/mini+blur-5/predictions.parquet")["score"].to_list()
    assert clean != pytest.approx(blurred)
    # Each perturbed evaluation is in the run's DuckDB file like any evaluation.
    with duckdb.connect(str(run.parent / "results.duckdb"), read_only=True) as con:
        names = {r[0] for r in con.execute("SELECT DISTINCT name FROM evaluations").fetchall()}
        protocol = con.execute("SELECT protocol FROM evaluations WHERE name = 'mini+c40-1' LIMIT 1").fetchone()[0]
    assert {"mini", "mini+blur-1", "mini+blur-5", "mini+c40-1"} <= names
    assert json.loads(protocol)["perturbation"]["parameter"] == 40
    # ... and in MLflow: one run per evaluation under the run's parent, calibration beside AUC, folds included.
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{run.parent / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("robust")
    evals = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id],
                                                            "tags.`fvc.role` = 'evaluation'")}
    assert {"eval/mini", "eval/mini+blur-1", "eval/mini+blur-5", "eval/mini+c40-1"} <= set(evals)
    blurred_metrics = json.loads((run / "eval/mini+blur-5/metrics.json").read_text())["overall"]["fold_mean_score"]
    found = evals["eval/mini+blur-5"].data
    assert found.params["protocol.perturbation.name"] == "blur" and found.params["protocol.perturbation.level"] == "5"
    assert found.metrics["test_auc"] == pytest.approx(blurred_metrics["roc_auc"])
    assert found.metrics["test_ece_15"] == pytest.approx(blurred_metrics["ece_15"])
    folds = client.search_runs([experiment.experiment_id], "tags.`fvc.role` = 'fold'")
    fold_0 = json.loads((run / "fold_0/metrics.json").read_text())
    assert any(r.data.metrics.get("test_brier") == pytest.approx(fold_0["brier"]) for r in folds)
    # Perturbed clips are cached like clean ones (12 videos x 3 perturbations), keyed apart from them ...
    assert _entries(cache) == before + 36
    # ... so the same command again decodes nothing new and gives the same numbers.
    again = fvc("evaluate", str(run), str(world["table"]), "--name", "mini", "--perturb", "blur:1,5",
                "--perturb", "c40")
    assert again.returncode == 0, again.stderr
    assert _entries(cache) == before + 36
    assert pl.read_parquet(run / "eval/mini/robustness.parquet").equals(grid)


def test_a_wrong_perturbation_is_one_line_before_any_scoring(world):
    done = fvc("evaluate", str(world["run"]), str(world["table"]), "--name", "bad", "--perturb", "blur:9")
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --perturb 'blur:9': level 9 does not exist (levels 1-5)"
    assert not (world["run"] / "eval" / "bad").exists()


def test_evaluate_scores_through_each_fold_s_temperature_as_its_test_part_was(world, tmp_path):
    config = yaml.safe_load((world["root"] / "experiment.yaml").read_text())
    config["output_dir"] = str(tmp_path / "runs")
    config["data"].pop("cache")
    config["trainer"]["calibration"] = "temperature"
    (tmp_path / "calibrated.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(tmp_path / "calibrated.yaml")]) == 0
    run = tmp_path / "runs" / "naive_cnn"
    assert fvc("evaluate", str(run), str(world["table"]), "--name", "own").returncode == 0
    evaluated = pl.read_parquet(run / "eval/own/predictions.parquet")
    metrics = json.loads((run / "eval/own/metrics.json").read_text())
    for fold in (0, 1):
        temperature = json.loads((run / f"fold_{fold}/metrics.json").read_text())["temperature"]
        assert metrics["protocol"]["calibration"]["temperature"][str(fold)] == temperature
        # The fold's own test videos get the very score its predictions.parquet holds.
        tested = pl.read_parquet(run / f"fold_{fold}/predictions.parquet").join(evaluated, on="video_path")
        assert tested[f"score_fold_{fold}"].to_list() == pytest.approx(tested["score"].to_list(), abs=1e-6)
        assert tested[f"score_uncalibrated_fold_{fold}"].to_list() == pytest.approx(
            tested["score_uncalibrated"].to_list(), abs=1e-6)
    means = [(a + b) / 2 for a, b in zip(evaluated["score_fold_0"], evaluated["score_fold_1"], strict=True)]
    assert evaluated["score"].to_list() == pytest.approx(means)
    assert metrics["overall"]["fold_mean_score"]["ece_15"] == pytest.approx(
        compute_metrics(evaluated["label"].to_list(), means)["ece_15"])
