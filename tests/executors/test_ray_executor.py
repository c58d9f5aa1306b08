"""The ray executor on a real two-node Ray cluster (127.0.0.1): folds side by side, tracker events in
order in the driver, a SIGKILLed worker retried, a fold's own error and the storage check in one line."""

from __future__ import annotations

import os
import re
import signal
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from fvc_ray.config import RayExecutorConfig  # noqa: E402
from fvc_ray.executor import ClusterLost, RayExecutor  # noqa: E402

from fvc_core.errors import Terminated, UserError  # noqa: E402
from fvc_core.executors import FoldTask  # noqa: E402

from . import tasks  # noqa: E402
from .conftest import Recorder  # noqa: E402


@pytest.fixture
def connect(ray_cluster):
    made: list[RayExecutor] = []

    def _connect(**keys) -> RayExecutor:
        executor = RayExecutor(RayExecutorConfig(address=ray_cluster.address, **keys))
        executor.start()
        made.append(executor)
        return executor

    yield _connect
    for executor in made:
        executor.close()


def fold_tasks(run_dir: Path, folds: int) -> list[FoldTask]:
    return [FoldTask(config={"folds": folds}, run_dir=str(run_dir), fold=k, seed=5) for k in range(folds)]


def test_folds_run_side_by_side_in_workers_of_the_cluster(connect, tmp_path, recorder):
    # Each fold finishes only once every fold has started: two folds of one CPU each on two
    # one-CPU nodes can only do that side by side.
    results = connect(num_cpus=1).run(fold_tasks(tmp_path, 2), tasks.side_by_side, recorder)
    pids = [pid for _, pid in results]
    assert len(set(pids)) == 2 and os.getpid() not in pids


def test_each_folds_events_reach_the_driver_in_order_before_its_result(connect, tmp_path, recorder):
    executor = connect()
    for task, result in executor.run(fold_tasks(tmp_path, 3), tasks.three_epochs, recorder):
        recorder.events.append(("result", task.fold))
        assert result["fold"] == task.fold and result["pid"] != os.getpid()
        assert (tmp_path / f"fold_{task.fold}.txt").read_text() == f"fold {task.fold} seed 5\n"
    for fold in range(3):
        mine = [e for e in recorder.events if e[1] == fold]
        assert mine == [("log_epoch", fold, 1, {"train_loss": 1.0 + fold}, 10),
                        ("log_epoch", fold, 2, {"train_loss": 0.5 + fold}, 20),
                        ("log_epoch", fold, 3, {"train_loss": 1.0 / 3 + fold}, 30),
                        ("result", fold)]


def test_each_fold_sees_a_gpu_of_its_own(ray_cluster, connect, tmp_path, recorder):
    # A node declaring two GPUs (Ray's logical resources: no device needed to check the
    # assignment); two folds of one GPU each run side by side there, and each process sees one
    # GPU, not the other's: torch's "cuda" in that fold is its own device.
    node = ray_cluster.add_node(num_cpus=2, num_gpus=2, node_ip_address="127.0.0.1")
    try:
        ray_cluster.wait_for_nodes()
        results = [r for _, r in connect(num_cpus=1, num_gpus=1).run(fold_tasks(tmp_path, 2), tasks.gpus_seen,
                                                                     recorder)]
    finally:
        ray_cluster.remove_node(node)
    seen = [r["CUDA_VISIBLE_DEVICES"] for r in results]
    assert sorted(seen) == ["0", "1"], results
    assert [r["ray_gpu_ids"] for r in results] == [[s] for s in seen]


def kill_when_parked(run_dir: Path, fold: int) -> threading.Thread:
    """SIGKILL the worker that parked fold ``fold`` (it wrote its pid) once it has parked."""
    def kill() -> None:
        parked = run_dir / f"parked_{fold}"
        tasks.wait_for(parked, "the fold to park")
        os.kill(int(parked.read_text()), signal.SIGKILL)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    return thread


def test_a_worker_killed_mid_fold_is_retried_and_resumes_from_its_checkpoint(connect, tmp_path, recorder):
    executor = connect(max_retries=2)
    killer = kill_when_parked(tmp_path, 0)
    [(task, result)] = list(executor.run(fold_tasks(tmp_path, 1), tasks.parks_until_killed, recorder))
    killer.join()
    assert result["resumed_after"] == "epoch 1"
    assert result["pid"] != int((tmp_path / "parked_0").read_text())
    # The killed attempt's epoch reached the driver, and the retry sent only what came after it.
    assert [(e[2], e[4]) for e in recorder.events] == [(1, 10), (2, 20)]


def test_a_worker_killed_with_no_retries_left_stops_the_run_in_one_line(connect, tmp_path, recorder):
    executor = connect(max_retries=0)
    killer = kill_when_parked(tmp_path, 0)
    with pytest.raises(ClusterLost) as err:  # a UserError: one line, exit 2, as the cluster's other failures
        list(executor.run(fold_tasks(tmp_path, 1), tasks.parks_until_killed, recorder))
    killer.join()
    text = str(err.value)
    assert "\n" not in text and text.startswith("a Ray worker was lost and 0 retries did not make up for it")
    assert text.endswith("fold 0 stopped, finished epochs are kept: run the same command again to resume")


def test_a_folds_own_error_reaches_the_driver_as_itself(connect, tmp_path, recorder):
    with pytest.raises(UserError) as err:
        list(connect().run(fold_tasks(tmp_path, 1), tasks.refuses, recorder))
    assert type(err.value) is UserError
    assert str(err.value) == f"{tmp_path}/fold_0: the fold's data says no"
    assert [e[:3] for e in recorder.events] == [("log_epoch", 0, 1)]


@pytest.mark.parametrize("run_dir, problem", [("/nonexistent/fvc-shared/runs/x", "cannot see the run folder"),
                                              ("/proc", "cannot write in the run folder")])
def test_a_node_that_cannot_use_the_run_folder_stops_the_run_naming_node_and_path(connect, recorder, run_dir,
                                                                                  problem):
    task = FoldTask(config={}, run_dir=run_dir, fold=0)
    with pytest.raises(UserError) as err:
        list(connect().run([task], tasks.storage_checked, recorder))
    text = str(err.value)
    assert "\n" not in text
    assert text.startswith(f"node {socket.gethostname()} (127.0.0.1): {problem} {run_dir} ")
    assert "storage every node sees" in text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_address_nobody_answers_is_one_line_and_connects_nothing(monkeypatch):
    import ray

    port = free_port()
    executor = RayExecutor(RayExecutorConfig(address=f"127.0.0.1:{port}", connect_timeout_s=2))
    with pytest.raises(UserError) as err:
        executor.start()
    # Ray dials this machine's outward address for a loopback one (unless the test cluster is up): either is named.
    assert re.match(rf"executor\.address: no Ray cluster answers at [\d.]+:{port} .*within 2 s\)", str(err.value))
    assert "\n" not in str(err.value)
    assert not ray.is_initialized()
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    with pytest.raises(UserError, match=r"^\$RAY_ADDRESS: no Ray cluster answers"):
        RayExecutor(RayExecutorConfig()).start()
    with pytest.raises(UserError, match="is not a Ray address"):
        RayExecutor(RayExecutorConfig(address="head-node")).start()
    assert not ray.is_initialized()


def test_connecting_keeps_fvcs_own_signal_handlers(ray_cluster):
    # ray.init installs a SIGTERM handler of its own; fvc's (state saved, status recorded) must stay.
    def ours(signum, frame):  # pragma: no cover - never called
        pass

    previous = signal.signal(signal.SIGTERM, ours)
    executor = RayExecutor(RayExecutorConfig(address=ray_cluster.address))
    try:
        executor.start()
        assert signal.getsignal(signal.SIGTERM) is ours
    finally:
        executor.close()
        signal.signal(signal.SIGTERM, previous)


def _run_in_thread(executor, run_dir: Path, outcome: dict) -> threading.Thread:
    def go() -> None:
        run_dir.mkdir()
        try:
            results = executor.run(fold_tasks(run_dir, 2), tasks.holds_until_released, Recorder())
            outcome[run_dir.name] = sorted(result for _, result in results)
        except BaseException as exc:  # what the run's thread saw is the test's subject
            outcome[run_dir.name] = exc

    thread = threading.Thread(target=go)
    thread.start()
    return thread


def _started(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("started_*"))


def test_runs_sharing_one_executor_share_max_concurrent(connect, tmp_path):
    # Four half-CPU folds fit the two-CPU cluster: only the shared limit keeps two of them waiting.
    executor = connect(num_cpus=0.5, max_concurrent=2)
    assert executor.capacity() == 2
    outcome: dict = {}
    threads = [_run_in_thread(executor, tmp_path / name, outcome) for name in ("a", "b")]
    try:
        end = time.monotonic() + tasks.DEADLINE_S
        while len(_started(tmp_path)) < 2 and time.monotonic() < end:
            time.sleep(0.02)
        time.sleep(1.5)  # room for a third fold to start, if the limit were per run
        assert len(_started(tmp_path)) == 2, _started(tmp_path)
    finally:
        (tmp_path / "release").write_text("")
        for thread in threads:
            thread.join(timeout=tasks.DEADLINE_S)
    assert outcome == {"a": [0, 1], "b": [0, 1]}
    assert len(_started(tmp_path)) == 4


def test_cancel_stops_every_run_under_way_in_every_thread(connect, tmp_path):
    executor = connect(num_cpus=0.5)
    assert executor.capacity() == 4  # unset max_concurrent: what the cluster's CPUs hold
    outcome: dict = {}
    threads = [_run_in_thread(executor, tmp_path / name, outcome) for name in ("a", "b")]
    try:
        end = time.monotonic() + tasks.DEADLINE_S
        while len(_started(tmp_path)) < 4 and time.monotonic() < end:
            time.sleep(0.02)
    finally:
        executor.cancel()
        for thread in threads:
            thread.join(timeout=tasks.DEADLINE_S)
    assert {name: type(exc) for name, exc in outcome.items()} == {"a": Terminated, "b": Terminated}
    with pytest.raises(Terminated):  # a run that starts after the cancel does not start
        next(iter(executor.run(fold_tasks(tmp_path / "a", 1), tasks.holds_until_released, Recorder())))
