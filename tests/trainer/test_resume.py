"""Resume: a run killed in the middle of a fold ends with the same metrics as an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import torch

from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import TinyDataset, make_job, small_config
from tests.trainer.run_tiny import RESUME_CONFIG

ROOT = Path(__file__).resolve().parents[2]


def tiny_run(out: Path, delay: float = 0.0) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "tests.trainer.run_tiny", str(out), str(delay)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def metrics(out: Path) -> list[str]:
    """metrics.json of each fold, and the scores behind them (metrics of easy data hide small changes)."""
    folds = [out / f"tiny_model/fold_{k}" for k in range(2)]
    return [(f / "metrics.json").read_text() for f in folds] + [
        pl.read_parquet(f / "predictions.parquet").write_csv() for f in folds]


def reference_run(out: Path) -> None:
    """The same run uninterrupted, in this process (same thread count as run_tiny)."""
    torch.set_num_threads(1)
    config = small_config(**RESUME_CONFIG)
    SupervisedTrainer(config).run(make_job(out, config))


def test_sigkill_in_the_middle_of_a_fold_then_resume_gives_the_same_metrics(tmp_path):
    killed = tiny_run(tmp_path / "killed", delay=0.03)
    last = tmp_path / "killed/tiny_model/fold_1/last.pt"
    deadline = time.monotonic() + 60
    while not last.exists():
        assert killed.poll() is None, killed.stdout.read().decode()
        assert time.monotonic() < deadline, "no checkpoint of fold 1 appeared"
        time.sleep(0.005)
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    # Killed after fold 0 finished and fold 1 checkpointed an epoch, before fold 1 finished.
    assert (tmp_path / "killed/tiny_model/fold_0/metrics.json").exists()
    assert not (tmp_path / "killed/tiny_model/fold_1/metrics.json").exists()
    before = (tmp_path / "killed/tiny_model/fold_0/metrics.json").stat().st_mtime_ns

    resumed = tiny_run(tmp_path / "killed")
    out, _ = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, out.decode()
    assert "fold 0: finished earlier, kept" in out.decode()
    assert "resuming at epoch" in out.decode()
    reference_run(tmp_path / "reference")
    assert (tmp_path / "killed/tiny_model/fold_0/metrics.json").stat().st_mtime_ns == before
    assert metrics(tmp_path / "killed") == metrics(tmp_path / "reference")


class InterruptingDataset(TinyDataset):
    """Raises KeyboardInterrupt (as Ctrl-C does) at its n-th read."""

    def __init__(self, at: int):
        super().__init__()
        self.at = at

    def read_video(self, path, **kw):
        if len(self.reads) == self.at:
            self.reads.append(("interrupt", False, 0))
            raise KeyboardInterrupt
        return super().read_video(path, **kw)


def test_ctrl_c_keeps_the_last_epoch_and_the_next_run_finishes_the_same(tmp_path):
    torch.set_num_threads(1)
    config = small_config(**RESUME_CONFIG)
    # Fold 0, epoch 2: 6 train + 2 val reads per epoch, so read 10 is in epoch 2's training.
    job = make_job(tmp_path / "stopped", config, dataset=InterruptingDataset(at=10))
    with pytest.raises(KeyboardInterrupt):
        SupervisedTrainer(config).run(job)
    state = torch.load(tmp_path / "stopped/tiny_model/fold_0/last.pt", weights_only=True)
    assert state["epoch"] == 1
    assert "fold 0 resumes from its last finished epoch" in job.output.getvalue()

    job = make_job(tmp_path / "stopped", config)
    SupervisedTrainer(config).run(job)
    reference_run(tmp_path / "reference")
    assert metrics(tmp_path / "stopped") == metrics(tmp_path / "reference")
    # The resumed fold reports only the epochs it trained now.
    assert [(f, e) for f, e, _, _ in job.trackers.epochs][:3] == [(0, 2), (0, 3), (0, 4)]
