"""Trivial fold functions that run in a Ray worker (imported there by name: the test cluster's
PYTHONPATH holds the repository). Each waits on files, never on a time window."""

from __future__ import annotations

import os
import time
from pathlib import Path

from fvc_core.errors import UserError
from fvc_core.executors import FoldTask
from fvc_core.fold_worker import check_storage

# Generous: only a broken executor ever reaches it, and then the test fails naming what it waited for.
DEADLINE_S = 120.0


def wait_for(path: Path, what: str) -> None:
    end = time.monotonic() + DEADLINE_S
    while not path.exists():
        if time.monotonic() > end:
            raise TimeoutError(f"{what}: {path} never appeared")
        time.sleep(0.02)


def three_epochs(task: FoldTask, events) -> dict:
    """Logs three epochs, writes a file in the run folder, says where it ran."""
    for epoch in (1, 2, 3):
        events.log_epoch(task.fold, epoch, {"train_loss": 1.0 / epoch + task.fold}, epoch * 10)
    Path(task.run_dir, f"fold_{task.fold}.txt").write_text(f"fold {task.fold} seed {task.seed}\n")
    return {"fold": task.fold, "pid": os.getpid()}


def side_by_side(task: FoldTask, events) -> int:
    """Says it started, then waits until every other fold of the run has started too: it can only
    finish if all of them run at the same time."""
    run_dir = Path(task.run_dir)
    (run_dir / f"started_{task.fold}").write_text(str(os.getpid()))
    for other in range(int(task.config["folds"])):
        wait_for(run_dir / f"started_{other}", f"fold {task.fold} waiting for fold {other} to start beside it")
    return os.getpid()


def parks_until_killed(task: FoldTask, events) -> dict:
    """An epoch, then a checkpoint, then parks until killed; an attempt that finds the checkpoint
    resumes after it and finishes."""
    run_dir = Path(task.run_dir)
    checkpoint = run_dir / f"checkpoint_{task.fold}"
    if checkpoint.exists():
        events.log_epoch(task.fold, 2, {"train_loss": 0.5}, 20)
        return {"resumed_after": checkpoint.read_text(), "pid": os.getpid()}
    events.log_epoch(task.fold, 1, {"train_loss": 1.0}, 10)
    checkpoint.write_text("epoch 1")
    (run_dir / f"parked_{task.fold}").write_text(str(os.getpid()))
    wait_for(run_dir / "never", "parked until killed")
    return {"resumed_after": None, "pid": os.getpid()}


def refuses(task: FoldTask, events) -> None:
    events.log_epoch(task.fold, 1, {"train_loss": 1.0}, 10)
    raise UserError(f"{task.run_dir}/fold_{task.fold}: the fold's data says no")


def storage_checked(task: FoldTask, events) -> str:
    check_storage(task)
    return "ok"


def parks_after_first_checkpoint(task: FoldTask, events):
    """A real fold (run_fold_task) whose first video read after its first checkpoint parks the
    worker until it is killed, once: the retry, finding the park marker, trains on."""
    from fvc_loaders.dataset import MetadataDataset

    from fvc_core.fold_worker import run_fold_task

    run_dir = Path(task.run_dir)
    checkpoint = run_dir / f"fold_{task.fold}" / "last.pt"
    parked = run_dir / f"parked_{task.fold}"
    read = MetadataDataset.read_video

    def gated(self, *args, **kwargs):
        if checkpoint.exists() and not parked.exists():
            tmp = parked.with_suffix(".tmp")
            tmp.write_text(str(os.getpid()))
            os.replace(tmp, parked)
            wait_for(run_dir / "never", "parked until killed")
        return read(self, *args, **kwargs)

    MetadataDataset.read_video = gated
    try:
        return run_fold_task(task, events)
    finally:
        MetadataDataset.read_video = read


def gpus_seen(task: FoldTask, events) -> dict:
    """Side by side with the other folds, what this fold's process is given: the GPUs Ray assigned
    it and the CUDA_VISIBLE_DEVICES torch would read (torch numbers the visible ones from 0)."""
    import ray

    side_by_side(task, events)
    return {"ray_gpu_ids": [str(i) for i in ray.get_gpu_ids()],
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES")}


def holds_until_released(task: FoldTask, events) -> int:
    """Says it started (in the folder above its run's, shared by the runs of a test), then holds its
    slot until the test releases every fold."""
    shared = Path(task.run_dir).parent
    (shared / f"started_{Path(task.run_dir).name}_{task.fold}").write_text(str(os.getpid()))
    wait_for(shared / "release", "held until released")
    return task.fold
