"""The trainer on a tiny in-memory dataset: outputs, reproducibility, accumulation, bad videos."""

from __future__ import annotations

import json
import math

import polars as pl
import pytest
import torch

from fvc_core.errors import BadVideoError, UserError
from fvc_core.training.config import SupervisedConfig
from fvc_core.training.data import clip_seed, epoch_order
from fvc_core.training.loop import FoldTraining, NonFiniteLossError
from fvc_core.training.metrics import compute_metrics
from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import TinyDataset, TinyModel, make_job, small_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def run(tmp_path, config=None, **kw):
    job = make_job(tmp_path, config or small_config(), **kw)
    summary = SupervisedTrainer(job.config.trainer.config).run(job)
    return job, summary


def test_outputs_of_a_run(tmp_path):
    job, summary = run(tmp_path, small_config(epochs=3))
    run_dir = tmp_path / "tiny_model"
    for fold in range(2):
        fold_dir = run_dir / f"fold_{fold}"
        ckpt = torch.load(fold_dir / "model.pt", weights_only=True)
        assert set(ckpt) >= {"model_state_dict", "config", "epoch"}
        assert ckpt["config"]["trainer"]["folds"] == 2
        TinyModel().load_state_dict(ckpt["model_state_dict"])

        metrics = json.loads((fold_dir / "metrics.json").read_text())
        preds = pl.read_parquet(fold_dir / "predictions.parquet")
        assert preds.columns == ["video_path", "label", "score", "fold"]
        assert preds["fold"].unique().to_list() == [fold]
        split = pl.read_parquet(fold_dir / "split.parquet")
        assert sorted(preds["video_path"]) == sorted(split.filter(pl.col("part") == "test")["video_path"])
        # metrics.json is recomputable from predictions.parquet
        again = json.loads(json.dumps(compute_metrics(preds["label"], preds["score"], 0.5)))
        assert {k: metrics[k] for k in again} == again
        assert metrics["best_epoch"] == ckpt["epoch"]

        history = json.loads((fold_dir / "history.json").read_text())
        assert [h["epoch"] for h in history] == [1, 2, 3]
        assert {"train_loss", "val_loss", "val_acc", "val_auc", "val_eer", "lr", "lr_backbone"} <= set(history[0])
        # early_stopping.metric defaults to val_loss, min_epochs to half the epochs (2 of 3: issue 35)
        best = min(history[1:], key=lambda h: h["val_loss"])
        assert history[metrics["best_epoch"] - 1]["val_loss"] == best["val_loss"]
        assert not (fold_dir / "last.pt").exists()  # only needed while a fold is unfinished

    saved = json.loads((run_dir / "summary.json").read_text())
    accs = [f.metrics["accuracy"] for f in summary.folds]
    assert saved["mean"]["accuracy"] == pytest.approx(sum(accs) / 2)
    assert summary.std["accuracy"] == pytest.approx(abs(accs[0] - accs[1]) / math.sqrt(2))
    # trackers: one log_epoch per epoch and fold, one end_fold per fold
    assert [(f, e) for f, e, _, _ in job.trackers.epochs] == [(0, 1), (0, 2), (0, 3), (1, 1), (1, 2), (1, 3)]
    assert [r.fold for r in job.trackers.folds] == [0, 1]
    sent = job.trackers.epochs[0][2]
    assert {"train_loss", "val_auc", "lr"} <= set(sent) and "epoch_seconds" not in sent
    assert history[0]["data_wait_seconds"] <= history[0]["epoch_seconds"]
    assert "mean ± std" in job.output.getvalue()


def test_learning_rate_follows_warmup_then_cosine_per_optimiser_step(tmp_path):
    # 6 training videos, accumulation 4 -> 2 optimiser steps per epoch (the second one partial).
    job, _ = run(tmp_path, small_config(epochs=4, grad_accum=4, warmup_epochs=1, lr=0.01))
    steps = [step for fold, _, _, step in job.trackers.epochs if fold == 0]
    assert steps == [2, 4, 6, 8]
    lrs = [m["lr"] for fold, _, m, _ in job.trackers.epochs if fold == 0]
    # After 2 steps warm-up is over (factor 1 at step 2); then cosine over the remaining 6 steps.
    expected = [0.01 * 0.5 * (1 + math.cos(math.pi * k / 6)) for k in (0, 2, 4, 6)]
    assert lrs == pytest.approx(expected)
    backbone = [m["lr_backbone"] for fold, _, m, _ in job.trackers.epochs if fold == 0]
    assert backbone == pytest.approx([x / 10 for x in expected])  # backbone_lr 1e-3 vs lr 1e-2


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    run(tmp_path / "a")
    run(tmp_path / "b")
    for fold in range(2):
        for name in ("metrics.json", "predictions.parquet"):
            a = (tmp_path / "a/tiny_model" / f"fold_{fold}" / name).read_bytes()
            b = (tmp_path / "b/tiny_model" / f"fold_{fold}" / name).read_bytes()
            assert a == b, name


def test_decoding_workers_change_nothing(tmp_path):
    run(tmp_path / "w0", small_config(num_workers=0))
    run(tmp_path / "w2", small_config(num_workers=2))
    for fold in range(2):
        name = f"tiny_model/fold_{fold}/predictions.parquet"
        assert pl.read_parquet(tmp_path / "w0" / name).equals(pl.read_parquet(tmp_path / "w2" / name))


def test_partial_accumulation_group_is_the_mean_gradient_of_its_batches(tmp_path, monkeypatch):
    """6 batches, grad_accum 4: the second step's gradient is the mean over its 2 batches."""
    seen = []
    original = FoldTraining._optimizer_step

    def record(self):
        seen.append(({k: v.detach().clone() for k, v in self.model.state_dict().items()},
                     [p.grad.detach().clone() for p in self.model.parameters()]))
        original(self)

    monkeypatch.setattr(FoldTraining, "_optimizer_step", record)
    cfg = small_config(epochs=1, grad_accum=4, max_grad_norm=None, class_weights="none")
    job = make_job(tmp_path, cfg, model=NoDropout)
    SupervisedTrainer(cfg).run(job)
    assert len(seen) == 4  # 2 folds x 2 steps
    split = pl.read_parquet(tmp_path / "tiny_model/fold_0/split.parquet")
    paths = sorted(split["video_path"].to_list())
    train_rows = [paths.index(p) for p in split.filter(pl.col("part") == "train")["video_path"]]
    last_group = epoch_order(sorted(train_rows), 7, 0, 1)[4:]

    model = NoDropout()
    state, grads = seen[1]
    model.load_state_dict(state)
    model.train()
    labels = {p: lab for p, lab in split.select("video_path", "label").iter_rows()}
    total = 0
    for row in last_group:
        clip = job.dataset.read_video(paths[row], augment=True, seed=clip_seed(7, 0, 1, row))
        loss = torch.nn.functional.cross_entropy(model(clip[None]), torch.tensor([labels[paths[row]]]))
        total = total + loss / len(last_group)
    total.backward()
    for p, g in zip(model.parameters(), grads, strict=True):
        torch.testing.assert_close(p.grad, g)


class NoDropout(TinyModel):
    def __init__(self):
        super().__init__()
        self.head[0].p = 0.0


def test_bad_videos_are_skipped_and_listed(tmp_path):
    bad = ("/mem/real_03.mp4", "/mem/fake_05.mp4")
    job, summary = run(tmp_path, dataset=TinyDataset(bad=bad, on_bad_video="skip"))
    listed = json.loads((tmp_path / "tiny_model/skipped_videos.json").read_text())
    assert sorted(d["video_path"] for d in listed) == sorted(bad)
    assert all(d["reason"] == "moov atom not found" for d in listed)
    assert sorted(d["video_path"] for d in summary.skipped_videos) == sorted(bad)
    preds = pl.concat([pl.read_parquet(tmp_path / f"tiny_model/fold_{k}/predictions.parquet") for k in (0, 1)])
    assert preds.height == 14 and not set(bad) & set(preds["video_path"])
    # Once known, a bad video is not decoded again.
    assert sum(1 for p, _, _ in job.dataset.reads if p in bad) == 2
    assert "2 video(s) skipped" in job.output.getvalue()


def test_a_bad_video_stops_the_run_under_fail(tmp_path):
    with pytest.raises(BadVideoError, match=r"^/mem/fake_05.mp4: moov atom not found$"):
        run(tmp_path, dataset=TinyDataset(bad=("/mem/fake_05.mp4",)), config=small_config(num_workers=1))


def test_too_few_videos_fail_before_training(tmp_path):
    dataset = TinyDataset(n_real=2, n_fake=8)
    with pytest.raises(UserError, match="2 real videos"):
        run(tmp_path, small_config(folds=3), dataset=dataset)
    assert dataset.reads == []


class Exploding(TinyModel):
    calls = 0

    def forward(self, x):
        Exploding.calls += 1
        out = super().forward(x)
        return out * float("nan") if Exploding.calls == 5 else out


def test_non_finite_loss_names_epoch_and_step(tmp_path):
    Exploding.calls = 0
    with pytest.raises(NonFiniteLossError, match=r"fold 0 epoch 1 batch 5 \(optimiser step 2\): the loss is nan"):
        run(tmp_path, model=Exploding)


class DivergedAfterTraining(TinyModel):
    def forward(self, x):
        out = super().forward(x)
        return out if self.training else out * float("nan")


def test_weights_that_diverged_with_a_finite_loss_are_named_when_they_score(tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"^fold 0 val: the model scores NaN \(its weights diverged\)"):
        run(tmp_path, model=DivergedAfterTraining)


def test_models_score_in_their_own_eval_mode(tmp_path):
    modes = []

    class Recording(TinyModel):
        def forward(self, x):
            modes.append((self.training, torch.is_grad_enabled()))
            return super().forward(x)

    run(tmp_path, small_config(folds=2, epochs=1), model=Recording)
    # per fold: 6 train batches in train mode, then 2 val + 8 test without gradients in eval mode
    assert modes[:6] == [(True, True)] * 6 and modes[6:16] == [(False, False)] * 10


def test_unknown_early_stopping_metric_is_a_config_error():
    with pytest.raises(ValueError, match="unknown metric 'val_auroc'"):
        SupervisedConfig(early_stopping={"metric": "val_auroc"})
    with pytest.raises(ValueError, match="extra"):
        SupervisedConfig(epoch=3)


def test_bf16_autocast_trains_on_cpu(tmp_path):
    _, summary = run(tmp_path, small_config(amp="bf16", epochs=1))
    assert all(0.0 <= f.metrics["accuracy"] <= 1.0 for f in summary.folds)


def test_precision_and_device_the_machine_lacks_are_clear_errors():
    from fvc_core.training.loop import resolve_amp, resolve_device

    assert resolve_amp("auto", torch.device("cpu")) is None
    with pytest.raises(UserError, match="trainer.amp: fp16 needs a CUDA device"):
        resolve_amp("fp16", torch.device("cpu"))
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="trainer.device: 'cuda:1' asked for, but torch sees no CUDA"):
            resolve_device("cuda:1")
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        SupervisedConfig(device="gpu")
