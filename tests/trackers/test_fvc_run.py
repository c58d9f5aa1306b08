"""`fvc run` with trackers [console, mlflow, duckdb] on real encoded clips: killed mid-fold, resumed, read back."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

for plugin in ("fvc_loaders", "fvc_naive_cnn", "fvc_mlflow", "fvc_duckdb"):
    pytest.importorskip(plugin)

import duckdb  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from tests.builders import start_parked, tiny_experiment, tiny_videos  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
ENV.pop("MLFLOW_TRACKING_URI", None)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tracked")
    return tiny_experiment(root, tiny_videos(root / "videos"), experiment="tracked",
                           trainer={"epochs": 3, "early_stopping": {"patience": None}},
                           trackers=["console", "mlflow", "duckdb"], mlflow={"log_model_checkpoint": True})


def test_killed_then_resumed_run_is_tracked_once(experiment):
    root = experiment.parent
    run_dir = root / "out" / "naive_cnn"
    # Parked by tests/gated_fvc.py at fold 1's first read after its first checkpoint, then killed: the
    # state the test needs whatever the machine's load (no time window to hit).
    first = start_parked(run_dir / "fold_1" / "last.pt", root / "parked", root / "first.log", "run", str(experiment),
                         env=ENV, what="fold 1 never saved an epoch", deadline_s=240)
    first.send_signal(signal.SIGKILL)  # no fail_run, no cleanup: as a lost machine
    first.wait()
    assert not (run_dir / "fold_1" / "metrics.json").exists()

    # The tracker process outlives the training process. Once it lets go of its lock, both stores
    # say the run was killed, not that it is still running.
    with open(run_dir / "tracking" / "background.lock") as lock:
        deadline = time.monotonic() + 60
        while True:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                assert time.monotonic() < deadline, "the tracker process never finished"
                time.sleep(0.05)
    client = MlflowClient(f"sqlite:///{root / 'out' / 'mlflow.db'}")
    killed = client.search_runs([client.get_experiment_by_name("tracked").experiment_id])
    assert [r.info.status for r in killed if r.data.tags["fvc.role"] == "parent"] == ["KILLED"]
    con = duckdb.connect(str(root / "out" / "results.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT status, error FROM runs").fetchall() == [("killed", "killed")]
    finally:
        con.close()

    second = subprocess.run([*FVC, "run", str(experiment)], env=ENV, capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "warning" not in second.stdout + second.stderr  # neither tracker was switched off
    summary = json.loads((run_dir / "summary.json").read_text())
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]

    # MLflow: the same parent and fold runs went on; none was added by the resume.
    client = MlflowClient(f"sqlite:///{root / 'out' / 'mlflow.db'}")
    experiment_id = client.get_experiment_by_name("tracked").experiment_id
    runs = client.search_runs([experiment_id])
    assert len(runs) == 3 and all(r.data.tags["fvc.run_id"] == run_id for r in runs)
    parent = next(r for r in runs if r.data.tags["fvc.role"] == "parent")
    folds = sorted((r for r in runs if r.data.tags["fvc.role"] == "fold"), key=lambda r: r.data.tags["fold"])
    assert parent.info.status == "FINISHED" and [f.info.status for f in folds] == ["FINISHED", "FINISHED"]
    assert parent.data.params["data.num_frames"] == "4" and parent.data.params["protocol.model"] == "naive_cnn"
    assert parent.data.metrics["test_auc_mean"] == pytest.approx(summary["mean"]["roc_auc"], nan_ok=True)
    for fold in folds:
        assert fold.data.tags["mlflow.parentRunId"] == parent.info.run_id
        # Every epoch once, the one checkpointed but not reported before the kill included.
        epochs = sorted(int(m.value) for m in client.get_metric_history(fold.info.run_id, "epoch"))
        assert epochs == [1, 2, 3]
        assert len(client.get_metric_history(fold.info.run_id, "val_loss")) == 3
        names = {Path(a.path).name for a in client.list_artifacts(fold.info.run_id)}
        assert {"model.pt", "metrics.json", "predictions.parquet", "plots"} <= names

    # DuckDB: one run, attempted twice, every epoch once.
    con = duckdb.connect(str(root / "out" / "results.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT run_id, status, attempts FROM runs").fetchall() == [(run_id, "finished", 2)]
        assert con.execute("SELECT fold, count(*) FROM epochs GROUP BY fold ORDER BY fold").fetchall() == [
            (0, 3), (1, 3)]
        f1 = con.execute("SELECT avg(test_f1) FROM results").fetchone()[0]
        assert f1 == pytest.approx(summary["mean"]["f1_score"])
        assert con.execute("SELECT count(*) FROM predictions").fetchone()[0] == 12
    finally:
        con.close()

    shown = subprocess.run([*FVC, "results", "--db", str(root / "out")], env=ENV, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0 and f"run {run_id[:12]}" in shown.stdout and "2/2 folds" in shown.stdout


def test_fail_fast_stops_before_training_with_one_line(experiment):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = subprocess.run(
        [*FVC, "run", str(experiment), f"mlflow.tracking_uri=http://127.0.0.1:{port}", "mlflow.fail_fast=true",
         f"output_dir={experiment.parent / 'never'}"],
        env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"error: tracker 'mlflow' (fail_fast): MlflowUnavailable: cannot reach the MLflow "
                                   f"tracking store http://127.0.0.1:{port}: connection refused")
    assert not (experiment.parent / "never" / "naive_cnn" / "fold_0").exists()
