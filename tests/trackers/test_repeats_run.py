"""`fvc run` with trainer.repeats=2 and trackers [console, mlflow, duckdb] on real encoded clips: killed in
repeat 1, resumed there, and read back from disk, MLflow and DuckDB."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

for plugin in ("fvc_loaders", "fvc_naive_cnn", "fvc_mlflow", "fvc_duckdb"):
    pytest.importorskip(plugin)

import duckdb  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from tests.builders import start_parked, tiny_experiment, tiny_videos  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
ENV.pop("MLFLOW_TRACKING_URI", None)
METRICS = ("accuracy", "f1_score", "roc_auc")


def test_repeated_cv_killed_in_its_second_repeat_resumes_there_and_reports_its_spread(tmp_path):
    experiment = tiny_experiment(tmp_path, tiny_videos(tmp_path / "videos"), experiment="repeated",
                                 trainer={"repeats": 2, "epochs": 2, "early_stopping": {"patience": None}},
                                 trackers=["console", "mlflow", "duckdb"])
    run_dir = tmp_path / "out" / "naive_cnn"

    # Parked at repeat 1 fold 0's first read after its first checkpoint: repeat 0 is finished by then.
    first = start_parked(run_dir / "repeat_1" / "fold_0" / "last.pt", tmp_path / "parked", tmp_path / "first.log",
                         "run", str(experiment), env=ENV, what="repeat 1 never saved an epoch")
    first.send_signal(signal.SIGKILL)
    first.wait()
    finished_before = {p: p.stat().st_mtime_ns for p in run_dir.glob("repeat_0/fold_*/metrics.json")}
    assert len(finished_before) == 2
    assert not (run_dir / "repeat_1" / "fold_0" / "metrics.json").exists()

    second = subprocess.run([*FVC, "run", str(experiment)], env=ENV, capture_output=True, text=True, timeout=400)
    assert second.returncode == 0, second.stdout + second.stderr
    said = second.stdout + second.stderr
    assert "fold 0: finished earlier, kept" in said and "fold 1: finished earlier, kept" in said
    assert "fold 2 of 4" in said and "resuming at epoch 2" in said
    assert "2 repeats x 2 folds" in said and "95 % CI" in said
    # Repeat 0's folds were not trained again.
    assert {p: p.stat().st_mtime_ns for p in finished_before} == finished_before

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["repeats"] == 2 and summary["n_folds"] == 4
    assert [(f["repeat"], f["fold"], f["fold_in_repeat"]) for f in summary["folds"]] == [
        (0, 0, 0), (0, 1, 1), (1, 2, 0), (1, 3, 1)]
    for r in range(2):
        for k in range(2):
            metrics = json.loads((run_dir / f"repeat_{r}" / f"fold_{k}" / "metrics.json").read_text())
            assert (metrics["repeat"], metrics["seed"], metrics["fold"]) == (r, 3 + r, 2 * r + k)
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]

    # MLflow: one parent with mean, std and the interval; a fold run per repeat x fold, tagged with both.
    client = MlflowClient(f"sqlite:///{tmp_path / 'out' / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("repeated").experiment_id])
    parent = next(r for r in runs if r.data.tags["fvc.role"] == "parent")
    folds = sorted((r for r in runs if r.data.tags["fvc.role"] == "fold"), key=lambda r: int(r.data.tags["fold"]))
    assert len(runs) == 5 and parent.info.status == "FINISHED"
    assert [(f.data.tags["repeat"], f.data.tags["fold_in_repeat"]) for f in folds] == [
        ("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
    assert parent.data.metrics["repeats"] == 2
    for name, tracked in (("accuracy", "test_accuracy"), ("f1_score", "test_f1"), ("roc_auc", "test_auc")):
        assert parent.data.metrics[f"{tracked}_mean"] == pytest.approx(summary["mean"][name])
        assert parent.data.metrics[f"{tracked}_std"] == pytest.approx(summary["std"][name])
        low, high = summary["ci95"][name]
        if low is not None:
            assert parent.data.metrics[f"{tracked}_ci95_low"] == pytest.approx(low)
            assert parent.data.metrics[f"{tracked}_ci95_high"] == pytest.approx(high)

    # DuckDB: four fold rows with their repeat, and the run's spread in run_summary.
    con = duckdb.connect(str(tmp_path / "out" / "results.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT run_id, status, attempts, folds FROM runs").fetchall() == [
            (run_id, "finished", 2, 4)]
        assert con.execute('SELECT fold, "repeat" FROM folds ORDER BY fold').fetchall() == [
            (0, 0), (1, 0), (2, 1), (3, 1)]
        rows = {m: (mean, std, low, high, n) for m, mean, std, low, high, n in con.execute(
            "SELECT metric, mean, std, ci95_low, ci95_high, n_folds FROM run_summary WHERE run_id = ?",
            [run_id]).fetchall()}
        for name, tracked in (("accuracy", "test_accuracy"), ("f1_score", "test_f1"), ("roc_auc", "test_auc")):
            mean, std, low, high, n = rows[tracked]
            assert n == 4 and mean == pytest.approx(summary["mean"][name])
            assert std == pytest.approx(summary["std"][name])
            assert (low, high) == pytest.approx(tuple(summary["ci95"][name]), nan_ok=True)
        assert con.execute("SELECT avg(test_f1) FROM results").fetchone()[0] == pytest.approx(
            summary["mean"]["f1_score"])
    finally:
        con.close()
