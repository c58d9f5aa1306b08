"""`trainer.workers_per_fold: 2`: a fold trained data-parallel on two gloo ranks by the real `fvc run`.

The model is naive_cnn with ``dropout: 0`` and batch 1: its BatchNorm normalises each chunk of one
clip by its own statistics in training and (``norm_stats: clip``) in evaluation, so no number depends on
how the videos are split among processes, and nothing random remains in a step. Two ranks with
``grad_accum: 2`` then take exactly the optimiser steps of one process with ``grad_accum: 4`` (the same
batches, the same mean gradient): only the order of float sums differs. 14 videos make 5 training videos
per fold, so the epoch's last step holds one batch and rank 1 takes part in it with none.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

for plugin in ("fvc_loaders", "fvc_naive_cnn", "fvc_mlflow", "fvc_duckdb"):
    pytest.importorskip(plugin)

import duckdb  # noqa: E402
import polars as pl  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from tests.builders import DROP, ENV, FVC, ROOT, fvc, tiny_experiment, tiny_videos, with_a_broken_video  # noqa: E402

TRAINER = {"epochs": 2, "warmup_epochs": 1, "early_stopping": {"patience": None}}
ONE = {**TRAINER, "workers_per_fold": 1, "grad_accum": 4}
TWO = {**TRAINER, "workers_per_fold": 2, "grad_accum": 2}
MODEL = {"dropout": 0.0}
DATA = {"group_column": DROP}  # plain stratified folds: 7 videos to train and validate on, 5 of them to train
PARK_SITE = ROOT / "tests" / "executors" / "park_site"


def _run(root: Path, videos: Path, name: str, trainer: dict, **extra) -> subprocess.CompletedProcess:
    experiment = tiny_experiment(root, videos, file=f"{name}.yaml", output_dir=str(root / name), model=MODEL,
                                 data=DATA, trainer=trainer, **extra)
    return fvc("run", str(experiment))


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """The same experiment on one process (grad_accum 4) and on two ranks (grad_accum 2, both trackers)."""
    root = tmp_path_factory.mktemp("ddp")
    videos = tiny_videos(root / "videos", videos=7)
    one = _run(root, videos, "one", ONE)
    assert one.returncode == 0, one.stdout + one.stderr
    two = _run(root, videos, "two", TWO, trackers=["console", "mlflow", "duckdb"])
    assert two.returncode == 0, two.stdout + two.stderr
    (root / "two.log").write_text(two.stdout + two.stderr)
    return root


def _history(run_dir: Path, fold: int) -> list[dict]:
    return json.loads((run_dir / f"fold_{fold}" / "history.json").read_text())


def test_two_ranks_follow_one_process_with_the_same_global_batch(runs):
    for fold in (0, 1):
        one, two = _history(runs / "one" / "naive_cnn", fold), _history(runs / "two" / "naive_cnn", fold)
        assert [row["epoch"] for row in two] == [1, 2]
        for a, b in zip(one, two, strict=True):
            # 5 training videos: 2 steps an epoch on both (4 batches, then 1), so the schedules agree.
            assert b["step"] == a["step"] == 2 * a["epoch"], (one, two)
            for key in ("train_loss", "val_loss", "val_auc", "lr"):
                assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), (fold, a["epoch"], key)
        one_scores = pl.read_parquet(runs / "one" / "naive_cnn" / f"fold_{fold}" / "predictions.parquet")
        two_scores = pl.read_parquet(runs / "two" / "naive_cnn" / f"fold_{fold}" / "predictions.parquet")
        assert two_scores["video_path"].to_list() == one_scores["video_path"].to_list()
        assert two_scores["score"].to_list() == pytest.approx(one_scores["score"].to_list(), rel=1e-5, abs=1e-7)
    # Results depend on the per-rank batch: the key is in the config hash.
    hashes = {name: json.loads((runs / name / "naive_cnn" / "run.json").read_text())["config_hash"]
              for name in ("one", "two")}
    assert hashes["one"] != hashes["two"]


def test_rank_zero_alone_writes_the_fold_and_tells_the_trackers_once(runs):
    run_dir = runs / "two" / "naive_cnn"
    for fold in (0, 1):
        folder = run_dir / f"fold_{fold}"
        assert sorted(p.name for p in folder.iterdir()) == [
            "history.json", "metrics.json", "model.pt", "model.pt.sha256", "predictions.parquet", "split.parquet"]
        digest = hashlib.sha256((folder / "model.pt").read_bytes()).hexdigest()
        assert (folder / "model.pt.sha256").read_text().split()[0] == digest
    log = (runs / "two.log").read_text()
    # One voice: each epoch line once, though two processes trained it.
    assert log.count("fold 0 epoch 1: train_loss") == 1 and log.count("fold 1 epoch 2: train_loss") == 1

    con = duckdb.connect(str(runs / "two" / "results.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT fold, count(*) FROM epochs GROUP BY fold ORDER BY fold").fetchall() == [
            (0, 2), (1, 2)]
        assert con.execute("SELECT count(*) FROM predictions").fetchone()[0] == 14
    finally:
        con.close()
    client = MlflowClient(f"sqlite:///{runs / 'two' / 'mlflow.db'}")
    found = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    folds = [r for r in found if r.data.tags["fvc.role"] == "fold"]
    assert len(folds) == 2
    for run in folds:
        assert len(client.get_metric_history(run.info.run_id, "val_loss")) == 2

    shown = fvc("results", "--db", str(runs / "two"))
    assert shown.returncode == 0 and "2/2 folds" in shown.stdout, shown.stdout + shown.stderr
    from fvc_core import open_run

    summary = json.loads((run_dir / "summary.json").read_text())
    finished = open_run(run_dir)
    assert finished.run_folds.used == (0, 1) and finished.run_folds.missing == ()
    assert finished.predictions.height == 14
    finished.model(0)  # model.pt loads (its checksum is checked on the way)
    assert summary["mean"]["roc_auc"] == pytest.approx(
        sum(json.loads((run_dir / f"fold_{k}" / "metrics.json").read_text())["roc_auc"] for k in (0, 1)) / 2)


def test_a_video_skipped_by_any_rank_is_recorded_once_and_counted_as_one_process_counts_it(runs, tmp_path):
    # on_bad_video: skip. The corrupt file lands in some fold's training part, where whichever rank draws
    # it finds it; rank 0 alone writes skipped_videos.json. Its empty batch still counts in its step's
    # mean (as in one process), so the two-rank run still follows the one-process run.
    table = with_a_broken_video(runs / "videos" / "metadata.parquet")
    done = {}
    for name, trainer in (("one", ONE), ("two", TWO)):
        experiment = tiny_experiment(tmp_path, table, file=f"{name}.yaml", output_dir=str(tmp_path / name),
                                     model=MODEL, data={**DATA, "on_bad_video": "skip"}, trainer=trainer)
        done[name] = fvc("run", str(experiment))
        assert done[name].returncode == 0, done[name].stdout + done[name].stderr
    run_dir = tmp_path / "two" / "naive_cnn"
    skipped = json.loads((run_dir / "skipped_videos.json").read_text())
    assert [Path(s["video_path"]).name for s in skipped] == ["broken.mp4"]
    trained_on = [k for k in (0, 1) if pl.read_parquet(run_dir / f"fold_{k}" / "split.parquet").filter(
        (pl.col("part") == "train") & pl.col("video_path").str.ends_with("broken.mp4")).height]
    assert trained_on, "the corrupt file was in no training part: the test would prove nothing"
    for fold in (0, 1):
        one, two = _history(tmp_path / "one" / "naive_cnn", fold), _history(run_dir, fold)
        assert [r["train_loss"] for r in two] == pytest.approx([r["train_loss"] for r in one], rel=1e-5)


def test_refit_on_two_ranks_follows_one_process(runs, tmp_path):
    # trainer.refit: after the selection, a fresh model trains on train + val (7 videos: steps of 4 and 3
    # batches) on the ranks as the selection did; rank 0 scores the test part with it.
    metrics = {}
    for name, trainer in (("one", ONE), ("two", TWO)):
        experiment = tiny_experiment(tmp_path, runs / "videos" / "metadata.parquet", file=f"{name}.yaml",
                                     output_dir=str(tmp_path / name), model=MODEL, data=DATA,
                                     trainer={**trainer, "refit": True, "folds": 2})
        done = fvc("run", str(experiment))
        assert done.returncode == 0, done.stdout + done.stderr
        metrics[name] = json.loads((tmp_path / name / "naive_cnn" / "fold_0" / "metrics.json").read_text())
    assert metrics["two"]["scored_model"] == "refit" and metrics["two"]["refit_epochs"] == 2
    assert metrics["two"]["refit_train_loss"] == pytest.approx(metrics["one"]["refit_train_loss"], rel=1e-5)
    assert metrics["two"]["roc_auc"] == pytest.approx(metrics["one"]["roc_auc"])
    assert not (tmp_path / "two" / "naive_cnn" / "fold_0" / "refit_last.pt").exists()


def _processes_with(marker: str) -> list[int]:
    """Pids of this user's processes whose environment holds ``marker`` (the run's ranks)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def test_a_rank_killed_mid_fold_ends_the_fold_in_one_line_and_the_rerun_resumes(runs, tmp_path):
    experiment = tiny_experiment(tmp_path, runs / "videos" / "metadata.parquet", output_dir=str(tmp_path / "out"),
                                 model=MODEL, data=DATA, trainer=TWO)
    run_dir = tmp_path / "out" / "naive_cnn"
    parked = tmp_path / "parked"
    # tests/executors/park_site parks the first rank that reads a video once fold 0's first epoch is
    # checkpointed: a known state (epoch 2 of fold 0 under way), whatever the machine's load.
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(PARK_SITE), str(ROOT)]),
           "FVC_TEST_PARK_GATE": str(run_dir / "fold_0" / "last.pt"), "FVC_TEST_PARKED": str(parked)}
    proc = subprocess.Popen([*FVC, "run", str(experiment)], env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 240
        while not parked.exists():
            assert proc.poll() is None, proc.stdout.read()
            assert time.monotonic() < deadline, "no rank parked in fold 0's second epoch"
            time.sleep(0.05)
        os.kill(int(parked.read_text()), signal.SIGKILL)
        out, _ = proc.communicate(timeout=60)  # no hang: the other rank is ended by the launcher
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 2, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in out, out
    assert "fold 0: rank" in errors[0] and "killed by SIGKILL" in errors[0] and "run the same command again" \
        in errors[0], errors[0]
    time.sleep(0.5)
    assert _processes_with(f"FVC_TEST_PARKED={parked}") == []  # no rank left behind
    assert (run_dir / "fold_0" / "last.pt").exists() and not (run_dir / "fold_0" / "metrics.json").exists()

    again = fvc("run", str(experiment))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "fold 0 epoch 1: train_loss" not in again.stdout  # resumed after the checkpointed epoch
    # The resumed fold ends as the uninterrupted two-rank run did.
    for fold in (0, 1):
        resumed = json.loads((run_dir / f"fold_{fold}" / "metrics.json").read_text())
        straight = json.loads((runs / "two" / "naive_cnn" / f"fold_{fold}" / "metrics.json").read_text())
        assert resumed["roc_auc"] == straight["roc_auc"] and resumed["best_epoch"] == straight["best_epoch"]
        assert _history(run_dir, fold)[-1]["val_loss"] == pytest.approx(
            _history(runs / "two" / "naive_cnn", fold)[-1]["val_loss"], rel=1e-6)
    assert not (run_dir / "fold_0" / "last.pt").exists()


def test_the_ranks_die_with_a_killed_driver(runs, tmp_path):
    experiment = tiny_experiment(tmp_path, runs / "videos" / "metadata.parquet", output_dir=str(tmp_path / "out"),
                                 model=MODEL, data=DATA, trainer=TWO)
    parked = tmp_path / "parked"
    env = {**ENV, "PYTHONPATH": os.pathsep.join([str(PARK_SITE), str(ROOT)]),
           "FVC_TEST_PARK_GATE": str(tmp_path / "out" / "naive_cnn" / "fold_0" / "last.pt"),
           "FVC_TEST_PARKED": str(parked)}
    proc = subprocess.Popen([*FVC, "run", str(experiment)], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while not parked.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no rank parked"
            time.sleep(0.05)
        assert len(_processes_with(f"FVC_TEST_PARKED={parked}")) >= 3  # the driver and its two ranks
    finally:
        proc.kill()  # SIGKILL: the driver says nothing and cleans nothing up
        proc.wait()
    deadline = time.monotonic() + 30
    while left := _processes_with(f"FVC_TEST_PARKED={parked}"):
        assert time.monotonic() < deadline, f"processes of the killed run still alive: {left}"
        time.sleep(0.1)


def test_workers_per_fold_is_checked(tmp_path):
    videos = tmp_path / "videos.parquet"  # never read: the config is refused first
    zero = tiny_experiment(tmp_path, videos, file="zero.yaml", trainer={"workers_per_fold": 0})
    result = fvc("check", str(zero))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "trainer.workers_per_fold" in result.stdout + result.stderr


def test_ranks_on_cuda_need_a_gpu_each():
    import torch

    from fvc_core.errors import UserError
    from fvc_core.training.distributed import check_devices

    visible = torch.cuda.device_count()
    with pytest.raises(UserError, match=rf"2 ranks on CUDA need 2 GPUs, this process sees {visible}") \
            if visible < 2 else _nothing():
        check_devices(torch.device("cuda"), 2)
    with pytest.raises(UserError, match="not mps"):
        check_devices(torch.device("mps"), 2)
    check_devices(torch.device("cpu"), 2)


def _nothing():
    import contextlib

    return contextlib.nullcontext()


def test_a_data_parallel_fold_runs_in_a_ray_worker(runs, tmp_path, ray_cluster):
    # The fold's task goes to a worker of Ray's test cluster, which starts the fold's two ranks there
    # (one CPU, OMP_NUM_THREADS=1, as the local ranks here): the numbers of the local two-rank run.
    experiment = tiny_experiment(tmp_path, runs / "videos" / "metadata.parquet", output_dir=str(tmp_path / "out"),
                                 model=MODEL, data=DATA, trainer=TWO)
    done = subprocess.run([*FVC, "run", str(experiment), "executor.name=ray",
                           f"executor.address={ray_cluster.address}"], capture_output=True, text=True,
                          env={**ENV, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"},
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = tmp_path / "out" / "naive_cnn"
    assert (run_dir / ".fold-locks" / "repeat_0_fold_1.lock").exists()  # the folds went to the cluster
    for fold in (0, 1):
        on_ray, here = _history(run_dir, fold), _history(runs / "two" / "naive_cnn", fold)
        assert [row["val_loss"] for row in on_ray] == pytest.approx([row["val_loss"] for row in here], rel=1e-6)


# -- executor.rank_placement: the fold's ranks placed by Ray, one actor each, on any node --------------

RAY_ENV = {**ENV, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
# The note the fold's task prints once its ranks are placed: which node (and process) each rank got.
PLACED = re.compile(r"(fold \d): 2 data-parallel ranks placed by strict_spread: rank 0 on node \S+ \(id (\w+), "
                    r"pid (\d+)\), rank 1 on node \S+ \(id (\w+), pid (\d+)\)")


def _placed_run(experiment: Path, cluster) -> list[str]:
    return [*FVC, "run", str(experiment), "executor.name=ray", f"executor.address={cluster.address}",
            "executor.rank_placement=strict_spread"]


def _cluster_is_whole_again(cluster) -> None:
    """Every placement group the runs made is removed and the cluster's CPUs are all free again."""
    import ray

    ours = not ray.is_initialized()
    if ours:
        ray.init(address=cluster.address, log_to_driver=False)
    try:
        deadline = time.monotonic() + 30
        while True:
            groups = [g for g in ray.util.placement_group_table().values() if g["name"].startswith("fvc fold")]
            free = ray.available_resources().get("CPU", 0.0)
            if all(g["state"] == "REMOVED" for g in groups) and free == ray.cluster_resources()["CPU"]:
                break
            assert time.monotonic() < deadline, (groups, ray.available_resources())
            time.sleep(0.2)
        assert groups  # the runs did place their folds' ranks in groups
    finally:
        if ours:
            ray.shutdown()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_strict_spread_puts_the_ranks_on_two_nodes_and_they_follow_the_local_ranks(runs, tmp_path, ray_cluster):
    # Ray's 2-node test cluster (one CPU each): each rank gets a bundle of half a CPU, strict_spread puts
    # them on different nodes, rank 0 opens the rendezvous on its node's address and rank 1 joins it there.
    experiment = tiny_experiment(tmp_path, runs / "videos" / "metadata.parquet", output_dir=str(tmp_path / "out"),
                                 model=MODEL, data=DATA, trainer=TWO)
    done = subprocess.run(_placed_run(experiment, ray_cluster), capture_output=True, text=True, env=RAY_ENV,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    placed = {m[1]: m for m in PLACED.finditer(done.stdout)}
    assert sorted(placed) == ["fold 0", "fold 1"], done.stdout
    for match in placed.values():
        assert match[2] != match[4], match[0]  # two Ray nodes
    run_dir = tmp_path / "out" / "naive_cnn"
    for fold in (0, 1):
        spread, here = _history(run_dir, fold), _history(runs / "two" / "naive_cnn", fold)
        assert len(spread) == len(here) == 2
        for a, b in zip(here, spread, strict=True):
            for key in ("train_loss", "val_loss", "val_auc", "lr"):
                assert b[key] == pytest.approx(a[key], rel=1e-5, abs=1e-7), (fold, a["epoch"], key)
    assert not any(_alive(int(m[i])) for m in placed.values() for i in (3, 5))  # no rank left running
    _cluster_is_whole_again(ray_cluster)


def test_a_placed_rank_killed_mid_fold_ends_the_fold_in_one_line_and_the_rerun_resumes(runs, tmp_path, ray_cluster):
    experiment = tiny_experiment(tmp_path, runs / "videos" / "metadata.parquet", output_dir=str(tmp_path / "out"),
                                 model=MODEL, data=DATA, trainer={**TWO, "epochs": 6})
    run_dir = tmp_path / "out" / "naive_cnn"
    proc = subprocess.Popen([*_placed_run(experiment, ray_cluster), "executor.max_concurrent=1"], env=RAY_ENV,
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 300
        # Rank 1 of fold 0 is SIGKILLed once fold 0's first epoch is checkpointed (5 epochs still to go).
        while not ((placed := PLACED.search("".join(lines))) and (run_dir / "fold_0" / "last.pt").exists()):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(lines)
            time.sleep(0.05)
        assert placed[1] == "fold 0"
        os.kill(int(placed[5]), signal.SIGKILL)
        proc.wait(timeout=120)  # no hang: rank 0 is ended by the fold's task
        reader.join(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = "".join(lines)
    assert proc.returncode == 2, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in out, out
    assert errors[0].startswith("error: fold 0: rank 1 of 2 data-parallel workers died") and \
        "run the same command again" in errors[0], errors[0]
    assert not _alive(int(placed[3])) and not _alive(int(placed[5]))  # rank 0 was ended too
    assert (run_dir / "fold_0" / "last.pt").exists() and not (run_dir / "fold_0" / "metrics.json").exists()
    _cluster_is_whole_again(ray_cluster)

    again = subprocess.run(_placed_run(experiment, ray_cluster), capture_output=True, text=True, env=RAY_ENV,
                           timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "fold 0 epoch 1: train_loss" not in again.stdout  # resumed after the checkpointed epoch
    for fold in (0, 1):
        assert [row["epoch"] for row in _history(run_dir, fold)] == [1, 2, 3, 4, 5, 6]
        assert (run_dir / f"fold_{fold}" / "metrics.json").exists()


def test_a_placement_that_cannot_work_is_one_line():
    from fvc_ray.placed_ranks import rank_bundle

    from fvc_core.errors import UserError

    assert rank_bundle(1.0, 0.0, 2, "spread", False) == {"CPU": 0.5}
    assert rank_bundle(8.0, 4.0, 4, "strict_spread", False) == {"CPU": 2.0, "GPU": 1.0}
    with pytest.raises(UserError, match=r"executor.num_gpus: 1 GPUs for a fold of 2 ranks .* not a whole GPU"):
        rank_bundle(1.0, 1.0, 2, "spread", False)
    with pytest.raises(UserError, match="executor.rank_placement: strict_spread .* has one node"):
        rank_bundle(1.0, 0.0, 2, "strict_spread", True)


def test_the_driver_removes_a_folds_placement_group_when_the_fold_ends_or_the_run_is_cancelled(runs, ray_cluster):
    # In this process as the driver (still connected afterwards, so Ray's own clean-up at the driver's exit
    # cannot be what removes them). A finished fold: each placed rank rebuilds the run and finds it done.
    import ray
    import yaml
    from fvc_ray.config import RayExecutorConfig
    from fvc_ray.executor import RayExecutor

    from fvc_core.errors import Terminated
    from fvc_core.executors import FoldTask

    run_dir = runs / "two" / "naive_cnn"
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
    task = FoldTask(config=config, run_dir=str(run_dir), fold=0, run_id=run_id, workers=2)
    notes: list[str] = []
    events = type("Events", (), {"note": lambda self, m: notes.append(m), "log_epoch": lambda self, *a: None})()
    executor = RayExecutor(RayExecutorConfig(address=ray_cluster.address, rank_placement="strict_spread"))
    executor.start()
    try:
        before = set(ray.util.placement_group_table())  # the other tests' groups, by id

        def made() -> list[tuple[str, str]]:
            return sorted((g["name"], g["state"]) for pg, g in ray.util.placement_group_table().items()
                          if pg not in before)

        [(_, result)] = list(executor.run([task], None, events))
        assert result.fold == 0 and result.metrics["roc_auc"] == json.loads(
            (run_dir / "fold_0" / "metrics.json").read_text())["roc_auc"]
        assert any("rank 1 on node" in note for note in notes), notes
        assert made() == [("fvc fold 0 ranks", "REMOVED")]

        # Three ranks on nodes of their own never fit two nodes: the fold waits for its group until cancelled.
        waiting = FoldTask(config=config, run_dir=str(run_dir), fold=1, run_id=run_id, workers=3)
        threading.Timer(3.0, executor.cancel).start()
        with pytest.raises(Terminated):
            list(executor.run([waiting], None, events))
        assert made() == [("fvc fold 0 ranks", "REMOVED"), ("fvc fold 1 ranks", "REMOVED")]
    finally:
        executor.close()


def _exit_with(code: int) -> None:
    if code < 0:
        os.kill(os.getpid(), -code)
    raise SystemExit(code)


def test_a_killed_rank_is_named_even_when_a_peer_failed_first():
    # A rank SIGKILLed makes its peer fail at the next collective (gloo: "Connection closed by peer"),
    # and join() may see that peer's exit first: the death is what the one line must name, not the
    # peer's error (which, under load, the kill test above once printed instead).
    import multiprocessing

    from fvc_core.fold_ranks import _died, _killed

    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_exit_with, args=(code,)) for code in (1, -signal.SIGKILL, -signal.SIGTERM)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    peer_first = type("Exited", (), {"error_index": 0, "exit_code": 1})()
    assert _died(_killed(processes, peer_first), 3) == "rank 1 of 3 data-parallel workers was killed by SIGKILL"
    # join()'s own SIGTERM to the others is not a death; a rank that exited on its own error is its own.
    assert _killed(processes[:1] + processes[2:], peer_first) is None
