"""The MLflow tracker against real MLflow stores, read back with MlflowClient.

The local SQLite store takes seconds to create (schema migrations), so the tests
of this module share one output folder, each under its own model name.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fvc_mlflow", reason="the fvc-mlflow plugin is not installed")
import mlflow  # noqa: E402
from fvc_mlflow.config import MlflowConfig  # noqa: E402
from fvc_mlflow.tracker import MlflowTracker, MlflowUnavailable, default_tracking_uri  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from fvc_core.tracking import TrackerConfig  # noqa: E402
from tests.trackers.run_outputs import full_run, make_fold, make_run, run_fold, summary_of  # noqa: E402


@pytest.fixture(autouse=True)
def _no_env_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mlflow_out")


@pytest.fixture(scope="module")
def client(output_dir) -> MlflowClient:
    return MlflowClient(default_tracking_uri(output_dir))


def runs_of(client: MlflowClient, fvc_run_id: str) -> list:
    experiments = [e.experiment_id for e in client.search_experiments()]
    return list(client.search_runs(experiments, f"tags.`fvc.run_id` = '{fvc_run_id}'"))


def split(runs: list) -> tuple:
    parents = [r for r in runs if r.data.tags.get("fvc.role") == "parent"]
    children = sorted((r for r in runs if r.data.tags.get("fvc.role") == "fold"), key=lambda r: r.data.tags["fold"])
    return parents, children


def artifact_names(client: MlflowClient, run_id: str, path: str | None = None) -> set[str]:
    return {Path(f.path).name for f in client.list_artifacts(run_id, path)}


def test_a_run_is_a_parent_with_one_nested_run_per_fold(output_dir, client, monkeypatch, tmp_path):
    # Started from another folder: nothing may land in the current folder (no ./mlruns).
    monkeypatch.chdir(tmp_path)

    def one_value_per_call(*args, **kwargs):
        raise AssertionError("metrics and params go in batches, not one call per value")

    monkeypatch.setattr(MlflowClient, "log_metric", one_value_per_call)
    monkeypatch.setattr(MlflowClient, "log_param", one_value_per_call)
    run = make_run(output_dir, model="m_full", experiment="full")
    summary = full_run(MlflowTracker(MlflowConfig()), run)

    assert (output_dir / "mlflow.db").is_file()
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlartifacts").exists()
    experiment = client.get_experiment_by_name("full")
    # Declared as model training, not GenAI work.
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    parents, children = split(runs_of(client, run.run_id))
    assert len(parents) == 1 and len(children) == 2
    parent = parents[0]
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["model_type"] == "m_full"
    assert parent.data.tags["config_hash"] == run.config_hash
    assert parent.data.tags["version.fvc-core"] == "0.1.0"
    params = parent.data.params
    assert params["trainer.epochs"] == "3"
    assert params["trainer.lr"] == "0.0005"
    assert params["trainer.early_stopping.metric"] == "val_auc"
    assert params["trackers"] == '["mlflow", "duckdb"]'
    assert params["protocol.frames_per_video"] == "8" and params["protocol.aggregation"] == "mean_logit"

    for fold, child in enumerate(children):
        assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert child.data.tags["fold"] == str(fold)
        assert child.info.status == "FINISHED"
        history = client.get_metric_history(child.info.run_id, "val_loss")
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == [0, 1, 2]
        assert {"train_loss", "val_acc", "val_auc", "lr"} <= set(child.data.metrics)
        expected = summary.folds[fold].metrics
        assert child.data.metrics["test_f1"] == pytest.approx(expected["f1_score"])
        assert child.data.metrics["test_auc"] == pytest.approx(expected["roc_auc"])
        assert child.data.metrics["test_accuracy"] == pytest.approx(expected["accuracy"])
        assert child.data.metrics["test_ap"] == pytest.approx(expected["average_precision"])
        assert child.data.metrics["test_eer"] == pytest.approx(expected["eer"])
        assert child.data.params["best_epoch"] == "2"
        files = artifact_names(client, child.info.run_id)
        assert {"metrics.json", "history.json", "predictions.parquet", "plots"} <= files
        assert "model.pt" not in files  # only with log_model_checkpoint
        assert artifact_names(client, child.info.run_id, "plots") == {
            "roc.png", "confusion_matrix.png", "training_curves.png"}

    assert parent.data.metrics["test_f1_mean"] == pytest.approx(summary.mean["f1_score"])
    assert parent.data.metrics["test_auc_std"] == pytest.approx(summary.std["roc_auc"])
    assert {"config.yaml", "summary.json", "run.json", "plots"} <= artifact_names(client, parent.info.run_id)
    roc = client.download_artifacts(parent.info.run_id, "plots/roc_all_folds.png", str(tmp_path))
    assert Path(roc).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Artifacts sit beside mlflow.db.
    assert parent.info.artifact_uri.startswith((output_dir / "mlartifacts").resolve().as_uri())


def test_checkpoint_is_uploaded_when_asked(output_dir, client):
    run = make_run(output_dir, model="m_ckpt", experiment="ckpt", folds=1)
    full_run(MlflowTracker(MlflowConfig(log_model_checkpoint=True, log_plots=False)), run, epochs=1)
    _, (child,) = split(runs_of(client, run.run_id))
    assert {"model.pt", "metrics.json"} <= artifact_names(client, child.info.run_id)
    assert "plots" not in artifact_names(client, child.info.run_id)


@pytest.mark.parametrize("state_file", ["kept", "lost"])
def test_a_resumed_run_continues_the_same_runs(output_dir, client, state_file):
    run = make_run(output_dir, model=f"m_resume_{state_file}", experiment="resume")
    first = MlflowTracker(MlflowConfig())
    first.start_run(run)
    done = run_fold(first, run, 0)
    for epoch in range(2):  # fold 1 reports two epochs...
        first.log_epoch(1, epoch, {"val_loss": 0.5}, step=epoch)
    del first  # ...checkpoints a third and dies before reporting it: no fail_run
    if state_file == "lost":
        (run.run_dir / "tracking" / "mlflow.json").unlink()

    resumed = make_run(output_dir, model=f"m_resume_{state_file}", experiment="resume", run_id=run.run_id,
                       resumed=True)
    second = MlflowTracker(MlflowConfig())
    second.start_run(resumed)
    second.end_fold(done)  # a trainer may report the finished fold again: it is not logged twice
    redone = run_fold(second, resumed, 1, epochs=4, first_epoch=3)  # resumes after the checkpointed epoch
    second.end_run(summary_of(resumed, [done, redone]))

    parents, children = split(runs_of(client, run.run_id))
    assert len(parents) == 1 and len(children) == 2
    assert parents[0].info.status == "FINISHED"
    assert all(c.info.status == "FINISHED" for c in children)
    assert len(client.get_metric_history(children[0].info.run_id, "test_f1")) == 1
    assert parents[0].data.metrics["folds_done"] == 2
    # The epoch reported by nobody comes from the fold's history, at the fold's pace of steps.
    val_loss = sorted((m.step, m.value) for m in client.get_metric_history(children[1].info.run_id, "val_loss"))
    assert [step for step, _ in val_loss] == [0, 1, 2, 3]
    assert val_loss[2][1] == pytest.approx(redone.history[2]["val_loss"])


def test_folds_the_tracker_missed_get_their_runs_at_the_end(output_dir, client):
    """mlflow added to `trackers` for a run whose folds had finished: the summary makes their runs."""
    run = make_run(output_dir, model="m_late", experiment="late")
    results = [make_fold(run, fold, checkpoint=False) for fold in range(2)]
    late = MlflowTracker(MlflowConfig(log_plots=False))
    late.start_run(run)
    late.end_run(summary_of(run, results))
    parents, children = split(runs_of(client, run.run_id))
    assert len(parents) == 1 and [c.data.tags["fold"] for c in children] == ["0", "1"]
    assert all(c.info.status == "FINISHED" for c in children)
    history = client.get_metric_history(children[1].info.run_id, "train_loss")
    assert sorted(m.step for m in history) == [0, 1, 2]
    assert children[1].data.metrics["test_f1"] == pytest.approx(results[1].metrics["f1_score"])


def test_a_failed_run_is_marked_failed(output_dir, client):
    run = make_run(output_dir, model="m_fail", experiment="fail")
    tracker = MlflowTracker(MlflowConfig())
    tracker.start_run(run)
    run_fold(tracker, run, 0, epochs=1)
    tracker.log_epoch(1, 0, {"train_loss": 1.0}, step=0)
    tracker.fail_run(run, "RuntimeError: out of memory")
    parents, children = split(runs_of(client, run.run_id))
    assert parents[0].info.status == "FAILED"
    assert parents[0].data.tags["error"] == "RuntimeError: out of memory"
    assert [c.info.status for c in children] == ["FINISHED", "FAILED"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_fails_fast_with_a_reason(tmp_path):
    from rich.console import Console

    from fvc_core.tracking.tracker_set import TrackerSet

    uri = f"http://127.0.0.1:{free_port()}"  # bound and released: nothing listens there
    tracker = MlflowTracker(MlflowConfig(tracking_uri=uri, probe_timeout_s=2))
    with pytest.raises(MlflowUnavailable, match=f"cannot reach the MLflow tracking store {uri}: connection refused"):
        tracker.check()
    # The environment is left as it was.
    assert "MLFLOW_HTTP_REQUEST_MAX_RETRIES" not in os.environ

    # Through the core: without fail_fast a warning names the tracker and the run goes on...
    run = make_run(tmp_path, model="m_down")
    console = Console(file=open(os.devnull, "w"))
    trackers = TrackerSet([("mlflow", MlflowTracker(MlflowConfig(tracking_uri=uri)), False)], console)
    trackers.start_run(run)
    trackers.log_epoch(0, 0, {"train_loss": 1.0}, 0)
    assert len(trackers.warnings) == 1 and "'mlflow'" in trackers.warnings[0]
    assert "connection refused" in trackers.warnings[0]
    # ...with fail_fast, check() stops the run before training with one line.
    from fvc_core.errors import UserError

    strict = TrackerSet([("mlflow", MlflowTracker(MlflowConfig(tracking_uri=uri, fail_fast=True)), True)], console)
    with pytest.raises(UserError, match="tracker 'mlflow' \\(fail_fast\\): MlflowUnavailable: cannot reach"):
        strict.check(run)


def test_the_environment_picks_the_store_and_config_wins(tmp_path, monkeypatch):
    env_uri = f"sqlite:///{tmp_path / 'env.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", env_uri)
    assert MlflowTracker(MlflowConfig()).tracking_uri(tmp_path) == env_uri
    assert MlflowTracker(MlflowConfig(tracking_uri="http://127.0.0.1:1")).tracking_uri(tmp_path) == "http://127.0.0.1:1"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert MlflowTracker(MlflowConfig()).tracking_uri(tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert issubclass(MlflowConfig, TrackerConfig)


@pytest.fixture
def mlflow_server(tmp_path):
    """`mlflow server` on 127.0.0.1 with a SQLite store in tmp; its URL once it answers."""
    port = free_port()
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server_artifacts")],
        stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
        start_new_session=True,  # its own process group: the uvicorn worker it spawns stops with it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=1) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("mlflow server did not start: " + (tmp_path / "server.log").read_text()[-2000:])
            time.sleep(0.3)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_logging_to_a_tracking_server_over_http(mlflow_server, tmp_path):
    tracker = MlflowTracker(MlflowConfig(tracking_uri=mlflow_server, experiment_name="over_http", fail_fast=True,
                                         log_plots=False))
    tracker.check()
    run = make_run(tmp_path / "out", model="m_http")
    summary = full_run(tracker, run, epochs=2)

    client = MlflowClient(mlflow_server)
    parents, children = split(runs_of(client, run.run_id))
    assert len(parents) == 1 and len(children) == 2
    assert client.get_experiment(parents[0].info.experiment_id).name == "over_http"
    assert children[1].data.metrics["test_auc"] == pytest.approx(summary.folds[1].metrics["roc_auc"])
    assert [m.step for m in client.get_metric_history(children[0].info.run_id, "train_loss")] == [0, 1]
    assert {"predictions.parquet", "metrics.json"} <= artifact_names(client, children[0].info.run_id)
    # The artifacts went through the server into its own folder, none into the output folder.
    assert (tmp_path / "server_artifacts").is_dir() and not (tmp_path / "out" / "mlflow.db").exists()
    state = json.loads((run.run_dir / "tracking" / "mlflow.json").read_text())
    assert state["tracking_uri"] == mlflow_server and state["parent_run_id"] == parents[0].info.run_id


def test_a_new_local_store_is_a_copy_of_a_cached_migrated_one(tmp_path, monkeypatch):
    from fvc_mlflow.local_store import ensure_local_store

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    first = tmp_path / "a" / "mlflow.db"
    ensure_local_store(first, tmp_path / "a" / "mlartifacts")
    assert [p.name for p in (tmp_path / "cache" / "fvc").iterdir()] == [f"mlflow-{mlflow.__version__}-empty.db"]
    client = MlflowClient(f"sqlite:///{first}")
    default = client.get_experiment("0")
    assert default.artifact_location == (tmp_path / "a" / "mlartifacts" / "0").as_uri()
    client.create_experiment("kept")
    ensure_local_store(first, tmp_path / "a" / "mlartifacts")  # an existing store is never replaced
    assert client.get_experiment_by_name("kept") is not None
    second = tmp_path / "b" / "mlflow.db"
    ensure_local_store(second, tmp_path / "b" / "mlartifacts")
    assert MlflowClient(f"sqlite:///{second}").get_experiment_by_name("kept") is None


def test_an_experiment_kind_the_user_chose_is_kept(output_dir, client):
    experiment_id = client.create_experiment("chosen_kind")
    client.set_experiment_tag(experiment_id, "mlflow.experimentKind", "finetuning")
    run = make_run(output_dir, model="m_kind", experiment="chosen_kind")
    full_run(MlflowTracker(MlflowConfig()), run)
    assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "finetuning"
