"""A real fold (PyAV loader, naive_cnn, supervised trainer) run from its task alone: in this process
and in a worker of the Ray test cluster, each byte-identical to the in-process run; then `fvc run`
on Ray end to end. These need the trainer's per-fold entry point (SupervisedTrainer.run_fold) and
the runner handing the executor to it: until both are in, they are expected to fail."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("fvc_loaders")
pytest.importorskip("fvc_naive_cnn")

from fvc_core.executors import FoldTask  # noqa: E402
from fvc_core.fold_worker import run_fold_task  # noqa: E402
from tests.builders import tiny_experiment, tiny_videos  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]
FOLDS = 2
# Same thread count as a Ray worker of one CPU: float sums in torch depend on it.
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A finished 2-fold run, trained in one process: the numbers every other way must reproduce."""
    root = tmp_path_factory.mktemp("fold_task")
    path = tiny_experiment(root, tiny_videos(root / "videos", videos=4, seed=3), experiment="tasks", seed=13,
                           output_dir=str(root / "local"), trainer={"folds": FOLDS, "epochs": 2})
    done = subprocess.run([*FVC, "run", str(path)], capture_output=True, text=True, env=ENV, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return root, path, root / "local" / "naive_cnn"


def metrics(run_dir: Path) -> list[bytes]:
    return [(run_dir / f"fold_{k}" / "metrics.json").read_bytes() for k in range(FOLDS)]


def fold_1_again(reference, name: str) -> tuple[FoldTask, Path]:
    """A copy of the finished run with fold 1 untrained (its split kept, as planning leaves it)."""
    root, _, run_dir = reference
    copy = root / name / "naive_cnn"
    shutil.copytree(run_dir, copy)
    for f in (copy / "fold_1").iterdir():
        if f.name != "split.parquet":
            f.unlink()
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    state = json.loads((run_dir / "run.json").read_text())
    return FoldTask(config=config, run_dir=str(copy), fold=1, seed=config["seed"], run_id=state["run_id"]), copy


def test_a_fold_run_from_its_task_in_this_process_is_byte_identical(reference, recorder, monkeypatch):
    import torch

    # The reference trained with one thread. The trainer sets torch's count itself (trainer.num_threads:
    # auto), taking OMP_NUM_THREADS as a limit, as in the reference's process.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    try:
        task, copy = fold_1_again(reference, "in_process")
        result = run_fold_task(task, recorder)
    finally:
        torch.set_num_threads(threads)
    assert result.fold == 1
    assert metrics(copy) == metrics(reference[2])
    assert [(e[1], e[2]) for e in recorder.events if e[0] == "log_epoch"] == [(1, 1), (1, 2)]


def test_a_fold_run_from_its_task_in_a_ray_worker_is_byte_identical(reference, recorder, ray_cluster):
    from fvc_ray.config import RayExecutorConfig
    from fvc_ray.executor import RayExecutor

    task, copy = fold_1_again(reference, "ray_worker")
    executor = RayExecutor(RayExecutorConfig(address=ray_cluster.address))
    executor.start()
    try:
        [(_, result)] = list(executor.run([task], run_fold_task, recorder))
    finally:
        executor.close()
    assert result.fold == 1
    assert metrics(copy) == metrics(reference[2])
    assert [(e[1], e[2]) for e in recorder.events if e[0] == "log_epoch"] == [(1, 1), (1, 2)]


def test_a_ray_worker_killed_mid_fold_is_retried_and_the_fold_ends_byte_identical(reference, recorder,
                                                                                   ray_cluster):
    import signal
    import threading

    from fvc_ray.config import RayExecutorConfig
    from fvc_ray.executor import RayExecutor

    from . import tasks

    task, copy = fold_1_again(reference, "killed")
    parked = copy / "parked_1"

    def kill() -> None:
        tasks.wait_for(parked, "fold 1 to park after its first checkpoint")
        os.kill(int(parked.read_text()), signal.SIGKILL)

    killer = threading.Thread(target=kill, daemon=True)
    killer.start()
    executor = RayExecutor(RayExecutorConfig(address=ray_cluster.address, max_retries=2))
    executor.start()
    try:
        [(_, result)] = list(executor.run([task], tasks.parks_after_first_checkpoint, recorder))
    finally:
        executor.close()
    killer.join()
    assert result.fold == 1
    assert metrics(copy) == metrics(reference[2])
    # Epoch 1 came from the killed attempt, epoch 2 from the retry that resumed after it.
    assert [(e[1], e[2]) for e in recorder.events if e[0] == "log_epoch"] == [(1, 1), (1, 2)]


def _loopback_env() -> dict[str, str]:
    # A driver in another process dials the test cluster's loopback address (see conftest.py).
    return {**ENV, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def test_fvc_run_on_ray_gives_the_same_metrics_as_local(reference, ray_cluster):
    root, path, run_dir = reference
    out = root / "on_ray"
    done = subprocess.run([*FVC, "run", str(path), f"output_dir={out}", "executor.name=ray",
                           f"executor.address={ray_cluster.address}"], capture_output=True, text=True,
                          env=_loopback_env(), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (out / "naive_cnn" / ".fold-locks").is_dir()  # the folds went through tasks, not the old loop
    assert metrics(out / "naive_cnn") == metrics(run_dir)


def test_fvc_run_with_an_address_nobody_answers_writes_nothing(reference):
    root, path, _ = reference
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = root / "dead_address"
    done = subprocess.run([*FVC, "run", str(path), f"output_dir={out}", "executor.name=ray",
                           f"executor.address=127.0.0.1:{port}", "executor.connect_timeout_s=2"],
                          capture_output=True, text=True, env=_loopback_env(), timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "executor.address: no Ray cluster answers at" in lines[0], done.stderr
    assert not out.exists()


def test_after_the_driver_is_killed_the_same_run_on_ray_keeps_finished_folds_and_trains_the_rest(reference,
                                                                                                ray_cluster):
    # The run folder as a killed driver leaves it: fold 0 finished, fold 1 planned but not trained,
    # run.json still saying running.
    root, path, run_dir = reference
    out = root / "driver_killed"
    copy = out / "naive_cnn"
    shutil.copytree(run_dir, copy)
    for f in (copy / "fold_1").iterdir():
        if f.name != "split.parquet":
            f.unlink()
    (copy / "summary.json").unlink()
    state = json.loads((copy / "run.json").read_text())
    (copy / "run.json").write_text(json.dumps({**state, "status": "running"}))
    kept = (copy / "fold_0" / "metrics.json").stat().st_mtime_ns

    done = subprocess.run([*FVC, "run", str(path), f"output_dir={out}", "executor.name=ray",
                           f"executor.address={ray_cluster.address}"], capture_output=True, text=True,
                          env=_loopback_env(), timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "finished earlier, kept" in done.stdout
    assert (copy / "fold_0" / "metrics.json").stat().st_mtime_ns == kept  # not trained again
    assert (copy / ".fold-locks" / "repeat_0_fold_1.lock").exists()  # fold 1 went to the cluster
    assert not (copy / ".fold-locks" / "repeat_0_fold_0.lock").exists()
    assert metrics(copy) == metrics(run_dir)
    assert json.loads((copy / "run.json").read_text())["status"] == "finished"


def test_a_fold_asking_for_more_than_this_machine_has_is_one_line_not_a_wait_forever(reference):
    root, path, _ = reference
    out = root / "too_much"
    env = {k: v for k, v in ENV.items() if k != "RAY_ADDRESS"}
    done = subprocess.run([*FVC, "run", str(path), f"output_dir={out}", "executor.name=ray", "executor.num_gpus=1"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines[-1].startswith("error: executor.num_gpus: each fold asks for 1 GPUs, but the Ray instance started "
                                "on this machine has 0"), done.stderr
    assert not out.exists()
