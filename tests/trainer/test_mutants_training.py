"""Numbers a run produces that are easy to get silently wrong: what a resume keeps (history, the
optimiser-step counter trackers get), skipped bad videos, gradient clipping, bf16 autocast.

Each test runs the real trainer on the tiny in-memory dataset of tests/trainer/helpers.py.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import polars as pl
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from fvc_core.training.splits import make_splits
from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import TinyDataset, TinyModel, make_job, small_config
from tests.trainer.run_tiny import RESUME_CONFIG

TIMINGS = ("epoch_seconds", "data_wait_seconds")


class CtrlCDataset(TinyDataset):
    """Sends this process a real SIGINT (as Ctrl-C does) as read number ``at`` (0-based) starts, or
    as the read after the first read of ``after_path`` starts (that one's outcome recorded first)."""

    def __init__(self, at: int | None = None, after_path: str | None = None, **kw):
        super().__init__(**kw)
        self.at, self.after_path, self.fired = at, after_path, False

    def read_video(self, path, **kw):
        previous = self.reads[-1][0] if self.reads else None
        if not self.fired and (len(self.reads) == self.at or (previous is not None and previous == self.after_path)):
            self.fired = True
            os.kill(os.getpid(), signal.SIGINT)
        return super().read_video(path, **kw)


def run(out: Path, config, dataset=None, model=TinyModel):
    torch.set_num_threads(1)
    job = make_job(out, config, dataset=dataset, model=model)
    SupervisedTrainer(config).run(job)
    return job


def interrupted_then_resumed(out: Path, config, dataset: CtrlCDataset, resume_dataset=None):
    torch.set_num_threads(1)
    with pytest.raises(KeyboardInterrupt):
        SupervisedTrainer(config).run(make_job(out, config, dataset=dataset))
    assert dataset.fired
    return run(out, config, dataset=resume_dataset or TinyDataset())


def learned_history(run_dir: Path, fold: int) -> list[dict]:
    rows = json.loads((run_dir / f"fold_{fold}/history.json").read_text())
    return [{k: v for k, v in row.items() if k not in TIMINGS} for row in rows]


def fold_outputs(run_dir: Path, folds: int = 2) -> list[str]:
    out = []
    for k in range(folds):
        metrics = json.loads((run_dir / f"fold_{k}/metrics.json").read_text())
        out.append(json.dumps(metrics, sort_keys=True))
        out.append(pl.read_parquet(run_dir / f"fold_{k}/predictions.parquet").write_csv())
        out.append(json.dumps(learned_history(run_dir, k)))
    return out


# --- 4. resume keeps history and the step counter ---------------------------------------------------
def test_resume_after_ctrl_c_keeps_every_epoch_in_history_and_the_step_count_trackers_get(tmp_path):
    config = small_config(**RESUME_CONFIG)
    reference = run(tmp_path / "reference", config)
    # Fold 0 reads 6 training + 2 validation clips per epoch: read 9 is in epoch 2, after epoch 1's checkpoint.
    resumed = interrupted_then_resumed(tmp_path / "resumed", config, CtrlCDataset(at=9))

    for fold in (0, 1):
        history = learned_history(tmp_path / "resumed/tiny_model", fold)
        assert [row["epoch"] for row in history] == [1, 2, 3, 4]
        assert history == learned_history(tmp_path / "reference/tiny_model", fold)
    # Trackers get, for each epoch trained after the resume, the optimiser steps of the whole fold so far.
    steps = {(fold, epoch): step for fold, epoch, _, step in reference.trackers.epochs}
    assert resumed.trackers.epochs[0][:2] == (0, 2)
    assert [(f, e, s) for f, e, _, s in resumed.trackers.epochs] == [
        (f, e, steps[f, e]) for f, e, _, _ in resumed.trackers.epochs]
    assert steps[0, 2] == 2 * steps[0, 1] > 0


# --- 5. on_bad_video: skip -------------------------------------------------------------------------
def test_a_bad_video_found_before_ctrl_c_trains_the_same_after_resume(tmp_path):
    """docs/trainer.md: a skipped video still counts in its accumulation group, so training is the same
    whether it was found bad in this epoch or an earlier one (and on resume)."""
    config = small_config(**RESUME_CONFIG)
    table = TinyDataset().table()
    fold0 = make_splits(table, config.folds, config.val_fraction, seed=7)[0]
    bad = sorted(fold0.part("train")["video_path"].to_list())[1]

    def dataset(cls=TinyDataset, **kw):
        return cls(bad=(bad,), on_bad_video="skip", **kw)

    run(tmp_path / "reference", config, dataset=dataset())
    # Stopped in fold 0's first epoch just after the bad video was found: the resumed epoch 1 knows
    # it is bad before reading it, the uninterrupted one found out while reading it.
    interrupted_then_resumed(tmp_path / "resumed", config, dataset(CtrlCDataset, after_path=bad),
                             resume_dataset=dataset())
    skipped = json.loads((tmp_path / "resumed/tiny_model/skipped_videos.json").read_text())
    assert [s["video_path"] for s in skipped] == [bad]
    assert fold_outputs(tmp_path / "resumed/tiny_model") == fold_outputs(tmp_path / "reference/tiny_model")


# --- 7. gradient clipping --------------------------------------------------------------------------
def gradient_norms_at_each_step(out: Path, **overrides) -> list[float]:
    """The total gradient norm every optimiser step of a real run was given."""
    norms: list[float] = []

    def record(optimizer, args, kwargs):
        grads = [p.grad.detach().float() for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    handle = register_optimizer_step_pre_hook(record)
    try:
        run(out, small_config(epochs=2, lr=0.5, **overrides))
    finally:
        handle.remove()
    return norms


def test_every_optimiser_step_gets_gradients_clipped_to_max_grad_norm(tmp_path):
    unclipped = gradient_norms_at_each_step(tmp_path / "free", max_grad_norm=None)
    bound = 0.02
    assert max(unclipped) > 5 * bound  # so the bound below is really binding
    clipped = gradient_norms_at_each_step(tmp_path / "clipped", max_grad_norm=bound)
    assert len(clipped) == len(unclipped) > 0
    assert max(clipped) <= bound * (1 + 1e-4)


# --- 8. amp: bf16 ----------------------------------------------------------------------------------
class DtypeRecordingModel(TinyModel):
    """Records the dtype the classifier's linear layer computes in, in training and in evaluation."""

    seen: list[tuple[bool, torch.dtype]] = []

    def __init__(self) -> None:
        super().__init__()
        self.head[1].register_forward_hook(lambda mod, inp, out: self.seen.append((self.training, out.dtype)))


@pytest.mark.parametrize(("amp", "dtype"), [("bf16", torch.bfloat16), ("off", torch.float32)])
def test_amp_bf16_runs_the_forward_in_bfloat16_on_cpu(tmp_path, amp, dtype):
    DtypeRecordingModel.seen = []
    run(tmp_path, small_config(epochs=1, amp=amp, device="cpu"), model=DtypeRecordingModel)
    seen = DtypeRecordingModel.seen
    assert {training for training, _ in seen} == {True, False}  # training steps and evaluations
    assert {d for _, d in seen} == {dtype}
