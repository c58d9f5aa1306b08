"""Real sweeps of tiny runs (encoded clips, naive_cnn, 1 epoch, 2 folds) through the `fvc` command:
a 2 x 2 grid ranked on validation and read back from sweep.parquet, DuckDB and MLflow; a sweep that
chooses the model plugin, SIGKILLed in its second point and resumed there."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

for plugin in ("fvc_loaders", "fvc_naive_cnn", "fvc_mlflow", "fvc_duckdb"):
    pytest.importorskip(plugin)

import polars as pl  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from tests.builders import start_parked, tiny_experiment, tiny_videos, write_distribution  # noqa: E402
from tests.trainer.helpers import TINY_MODEL_PLUGIN  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
ENV.pop("MLFLOW_TRACKING_URI", None)


def experiment(tmp_path: Path, trackers: list[str]) -> Path:
    return tiny_experiment(tmp_path, tiny_videos(tmp_path / "videos"), trainer={"early_stopping": {"patience": None}},
                           trackers=trackers)


def chosen_value(run_dir: Path) -> float:
    """The mean over folds of val_loss at each fold's best epoch, read from the fold's own history.json."""
    values = []
    for fold_dir in sorted(run_dir.glob("fold_*")):
        best = json.loads((fold_dir / "metrics.json").read_text())["best_epoch"]
        values += [row["val_loss"] for row in json.loads((fold_dir / "history.json").read_text())
                   if row["epoch"] == best]
    assert len(values) == 2
    return sum(values) / 2


def test_a_2x2_grid_is_ranked_on_validation_in_parquet_duckdb_and_mlflow(tmp_path):
    config = experiment(tmp_path, ["console", "duckdb", "mlflow"])
    done = subprocess.run([*FVC, "sweep", str(config), "trainer.lr=1.0e-3,5.0e-4", "model.chunk_size=2,4",
                           "--name", "grid"], env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / "out" / "grid"
    ids = {"lr=0.001_chunk_size=2", "lr=0.001_chunk_size=4", "lr=0.0005_chunk_size=2", "lr=0.0005_chunk_size=4"}
    assert ids <= {p.name for p in folder.iterdir()}
    assert "chosen by validation val_loss, lower is better" in done.stdout

    # sweep.parquet: best first by the validation value each fold chose its epoch on; test metrics as run.
    frame = pl.read_parquet(folder / "sweep.parquet")
    assert frame["point"].to_list() == sorted(ids, key=lambda p: chosen_value(folder / p))
    assert frame["rank"].to_list() == [1, 2, 3, 4]
    assert set(frame["selection_metric"]) == {"val_loss"}
    for row in frame.iter_rows(named=True):
        assert row["val_loss_mean"] == pytest.approx(chosen_value(folder / row["point"]))
        summary = json.loads((folder / row["point"] / "summary.json").read_text())
        assert row["test_roc_auc_mean"] == pytest.approx(summary["mean"]["roc_auc"], nan_ok=True)
        ran = yaml.safe_load((folder / row["point"] / "config.yaml").read_text())
        assert (row["trainer.lr"], row["model.chunk_size"]) == (ran["trainer"]["lr"], ran["model"]["chunk_size"])
        assert row["status"] == "finished" and row["folds_done"] == 2 and row["wall_s"] > 0

    # fvc results --sweep: the same points in the same order, from the DuckDB file.
    shown = subprocess.run([*FVC, "results", "--db", str(tmp_path / "out"), "--sweep", "grid"], env=ENV,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "chosen by validation val_loss, lower is better" in shown.stdout
    lines = [line for line in shown.stdout.splitlines() if line.startswith("│ ") and line[2].isdigit()]
    order = [(float(line.split("│")[2]), int(line.split("│")[3])) for line in lines]
    assert order == [(r["trainer.lr"], r["model.chunk_size"]) for r in frame.iter_rows(named=True)]
    for line, row in zip(lines, frame.iter_rows(named=True), strict=True):
        assert float(line.split("│")[4]) == pytest.approx(row["val_loss_mean"], abs=5e-4)

    wrong = subprocess.run([*FVC, "results", "--db", str(folder), "--sweep", "gird"], env=ENV,
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode == 2 and wrong.stderr.strip().splitlines() == [
        f"error: --sweep gird: no such sweep in {folder / 'results.duckdb'} (sweeps there: grid)"]

    # MLflow: the sweep's run -> a run per point -> its fold runs.
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    sweeps = [r for r in runs if r.data.tags.get("fvc.role") == "sweep"]
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"
    points = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == sweeps[0].info.run_id]
    assert {r.info.run_name for r in points} == ids
    for point in points:
        assert point.data.tags["fvc.role"] == "parent" and point.info.status == "FINISHED"
        assert point.data.metrics["val_loss_mean"] == pytest.approx(chosen_value(folder / point.info.run_name))
        folds = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == point.info.run_id]
        assert sorted(r.info.run_name for r in folds) == ["fold_0", "fold_1"]


def test_a_plugin_choosing_sweep_killed_in_its_second_point_resumes_there(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    write_distribution(site, "fvctest-tiny", {"fvctest_tiny": TINY_MODEL_PLUGIN}, {"tiny": "fvctest_tiny"})
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    config = experiment(tmp_path, ["console"])
    data = yaml.safe_load(config.read_text())
    data["model"] = {"name": "naive_cnn"}
    data["sweep"] = {"name": "models", "grid": {"model.name": ["naive_cnn", "tiny_cnn"]}}
    config.write_text(yaml.safe_dump(data))
    folder = tmp_path / "out" / "models"

    # Parked at the first read after tiny_cnn's fold 0 saved its epoch: the naive_cnn point is done by then.
    first = start_parked(folder / "model=tiny_cnn" / "fold_0" / "last.pt", tmp_path / "parked", tmp_path / "first.log",
                         "sweep", str(config), env=env, what="the second point never saved an epoch", deadline_s=400)
    first.send_signal(signal.SIGKILL)
    first.wait()
    kept = {p: p.stat().st_mtime_ns for p in (folder / "model=naive_cnn").glob("fold_*/metrics.json")}
    assert len(kept) == 2
    assert not (folder / "model=tiny_cnn" / "fold_0" / "metrics.json").exists()

    second = subprocess.run([*FVC, "sweep", str(config)], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=400)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "point model=naive_cnn: finished earlier, kept" in second.stdout
    assert "resuming at epoch 2" in second.stdout
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    frame = pl.read_parquet(folder / "sweep.parquet")
    assert sorted(frame["model.name"].to_list()) == ["naive_cnn", "tiny_cnn"]
    assert frame["status"].to_list() == ["finished", "finished"] and frame["folds_done"].to_list() == [2, 2]
    assert yaml.safe_load((folder / "model=tiny_cnn" / "config.yaml").read_text())["model"] == {"name": "tiny_cnn"}


def table_rows(text: str) -> list[list[str]]:
    """The header, then the body rows of a rich table as printed: each cell's lines joined by a space."""
    rows: list[list[str]] = [[]]
    for line in text.splitlines():
        bar = line[:1]
        if bar not in "┃│" or not line.startswith(f"{bar} "):
            continue
        cells = [c.strip() for c in line.strip().strip(bar).split(bar)]
        if bar == "┃" and not rows[0]:
            rows[0] = cells
        elif cells[0] and bar == "│":  # a rank (or '-') starts a row; the lines under it continue its cells
            rows.append(cells)
        else:
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], cells, strict=True)]
    return rows


def numbers(cell: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?(?:e-?\d+)?", cell.replace("±", " "))]


def test_fvc_results_groups_seeds_as_sweep_parquet_does(tmp_path):
    config = experiment(tmp_path, ["console", "duckdb"])
    # keep: last with 2 epochs: the kept epoch is the last, the value that ranks is the best epoch's
    done = subprocess.run([*FVC, "sweep", str(config), "seed=1,2", "trainer.lr=1.0e-3,5.0e-4",
                           "trainer.epochs=2", "trainer.early_stopping.keep=last", "--name", "seeds"],
                          env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    folder = tmp_path / "out" / "seeds"
    kept = [json.loads(p.read_text()) for p in folder.glob("*/fold_*/metrics.json")]
    assert len(kept) == 8 and any(m["best_epoch"] != m["best_metric_epoch"] for m in kept)
    frame = pl.read_parquet(folder / "sweep.parquet")
    assert frame.height == 2 and frame["seeds"].to_list() == [2, 2] and frame["rank"].to_list() == [1, 2]

    shown = subprocess.run([*FVC, "results", "--db", str(tmp_path / "out"), "--sweep", "seeds"], env=ENV,
                           capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert "sweep seeds: 2 configurations, chosen by validation val_loss" in shown.stdout
    header, *rows = table_rows(shown.stdout)
    assert header[:3] == ["#", "lr", "seeds"] and "seed" not in header
    assert len(rows) == 2  # four points, two configurations
    for cells, row in zip(rows, frame.iter_rows(named=True), strict=True):
        assert int(cells[0]) == row["rank"] and float(cells[1]) == row["trainer.lr"] and int(cells[2]) == 2
        # mean, ± std and the 95 % interval over seeds x folds, as sweep.parquet holds them (4 decimals shown)
        for cell, prefix in ((cells[3], "val_loss"), (cells[4], "test_roc_auc"), (cells[5], "test_accuracy")):
            expected = [row[f"{prefix}_{s}"] for s in ("mean", "std", "ci95_low", "ci95_high")]
            assert numbers(cell) == pytest.approx(expected, abs=5e-5), (prefix, cell)
        assert cells[6] == "4/4" and cells[-1] == "finished"


def test_a_point_whose_loss_diverges_is_recorded_and_the_others_still_run(tmp_path):
    # An lr sweep often holds a value too large: that point's NaN loss is its own failure, not a
    # mistake that stops every point.
    config = experiment(tmp_path, ["console"])
    done = subprocess.run([*FVC, "sweep", str(config), "trainer.lr=1.0e+8,1.0e-3", "trainer.epochs=2",
                           "--name", "diverge"], env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "point lr=1e+08 failed: fold 0 epoch" in done.stdout and "the loss is nan" in done.stdout
    assert "1 point(s) failed: lr=1e+08" in done.stdout and "Traceback" not in done.stderr
    frame = pl.read_parquet(tmp_path / "out" / "diverge" / "sweep.parquet")
    rows = {row["point"]: row for row in frame.iter_rows(named=True)}
    assert rows["lr=0.001"]["status"] == "finished" and rows["lr=0.001"]["rank"] == 1
    assert rows["lr=1e+08"]["status"] == "failed" and rows["lr=1e+08"]["rank"] is None
    header, *cells = table_rows(done.stdout.split("sweep diverge: 2 configurations")[1])
    assert [row[1] for row in cells] == ["0.001", "1e+08"]  # as the ids write them, not 100000000.0000


def test_an_interrupted_point_says_the_sweep_resumes_it(tmp_path):
    # `fvc run` of the YAML would train its base config in another folder, not resume the point.
    config = experiment(tmp_path, ["console"])
    folder = tmp_path / "out" / "tiny"
    log = tmp_path / "first.log"
    first = start_parked(folder / "lr=0.001" / "fold_0" / "last.pt", tmp_path / "parked", log, "sweep", str(config),
                         "trainer.lr=1.0e-3,5.0e-4", "trainer.epochs=2", env=ENV,
                         what="the first point never saved an epoch", deadline_s=400)
    first.send_signal(signal.SIGINT)
    assert first.wait(timeout=120) == 130
    text = log.read_text()
    assert "interrupted: fold 0 resumes from its last finished epoch on the next `fvc sweep` command" in text
    assert "`fvc run` of this config" not in text
