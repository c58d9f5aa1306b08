"""trainer.repeats: R seeds x k folds, their layout, and the spread of each test metric over all of them."""

from __future__ import annotations

import json
import math
import zlib

import numpy as np
import polars as pl
import pytest
import torch
from scipy import stats

from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import TinyDataset, make_job, small_config

SUMMARY_KEYS = ["experiment", "run_id", "model", "config_hash", "folds", "mean", "std", "skipped_videos", "aggregation",
                "protocol"]


def test_one_repeat_writes_what_a_run_always_wrote(tmp_path):
    torch.set_num_threads(1)
    config = small_config(folds=2, epochs=1)
    job = make_job(tmp_path, config)
    SupervisedTrainer(config).run(job)
    run_dir = tmp_path / "tiny_model"
    assert sorted(p.name for p in run_dir.iterdir() if p.is_dir()) == ["fold_0", "fold_1"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(summary) == SUMMARY_KEYS
    assert [sorted(f)[:3] for f in summary["folds"]] == [["accuracy", "average_precision", "best_epoch"]] * 2
    assert "repeat" not in json.loads((run_dir / "fold_0/metrics.json").read_text())
    assert "95 % CI" not in job.output.getvalue()


def test_repeats_split_under_their_own_seed_and_report_mean_std_and_interval_over_all_folds(tmp_path):
    torch.set_num_threads(1)
    config = small_config(folds=2, epochs=1, repeats=3)
    dataset = TinyDataset(n_real=10, n_fake=10)
    job = make_job(tmp_path, config, dataset=dataset, seed=7)
    SupervisedTrainer(config).run(job)
    run_dir = tmp_path / "tiny_model"

    splits = [pl.read_parquet(run_dir / f"repeat_{r}/fold_0/split.parquet").sort("video_path")["part"].to_list()
              for r in range(3)]
    assert splits[0] != splits[1] or splits[1] != splits[2]  # three seeds, not one split three times
    metrics = [json.loads((run_dir / f"repeat_{r}/fold_{k}/metrics.json").read_text())
               for r in range(3) for k in range(2)]
    assert [(m["repeat"], m["fold_in_repeat"], m["fold"], m["seed"]) for m in metrics] == [
        (0, 0, 0, 7), (0, 1, 1, 7), (1, 0, 2, 8), (1, 1, 3, 8), (2, 0, 4, 9), (2, 1, 5, 9)]

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["repeats"] == 3 and summary["n_folds"] == 6
    assert [(f["repeat"], f["fold"]) for f in summary["folds"]] == [(0, 0), (0, 1), (1, 2), (1, 3), (2, 4), (2, 5)]
    for name in ("accuracy", "f1_score", "roc_auc"):
        values = np.array([m[name] for m in metrics], dtype=float)
        assert summary["mean"][name] == pytest.approx(values.mean())
        assert summary["std"][name] == pytest.approx(values.std(ddof=1))
        # Nadeau-Bengio: 10 test videos against 10 trained on in every fold of 2-fold CV on 20.
        half = stats.t.ppf(0.975, 5) * math.sqrt((1 / 6 + 10 / 10) * values.var(ddof=1))
        low, high = summary["ci95"][name]
        assert low == pytest.approx(max(0.0, values.mean() - half))
        assert high == pytest.approx(min(1.0, values.mean() + half))
        assert low <= summary["mean"][name] <= high
    text = job.output.getvalue()
    assert "3 repeats x 2 folds" in text and "95 % CI" in text and "repeat 2 of 3 (seed 9)" in text


class MislabelledDataset(TinyDataset):
    """About 3 videos in 10 show the other class's clip: per-fold scores spread around 0.5 instead of
    sitting at 1.0, so a 95 % interval over the folds stays inside [0, 1] and is not cut by clipping."""

    def read_video(self, path: str, *, augment: bool = False, seed: int = 0) -> torch.Tensor:
        if zlib.crc32(path.encode()) % 10 < 3:
            path = path.replace("fake", "\0").replace("real", "fake").replace("\0", "real")
        return super().read_video(path, augment=augment, seed=seed)


def test_the_repeats_interval_inside_0_1_has_the_corrected_resampled_t_width(tmp_path):
    # 3 repeats x 4 folds of 40 videos: 12 folds, 10 test videos against 30 trained on in each.
    torch.set_num_threads(1)
    config = small_config(folds=4, epochs=3, repeats=3, warmup_epochs=0, lr=3e-2, backbone_lr=None)
    SupervisedTrainer(config).run(make_job(tmp_path, config, dataset=MislabelledDataset(20, 20), seed=7))
    run_dir = tmp_path / "tiny_model"
    folds = sorted(run_dir.glob("repeat_*/fold_*"))
    assert len(folds) == 12
    # n_test / n_train from the split each fold wrote (train and validation parts are trained on)
    parts = [pl.read_parquet(f / "split.parquet")["part"].to_list() for f in folds]
    ratio = float(np.mean([p.count("test") / (len(p) - p.count("test")) for p in parts]))
    summary = json.loads((run_dir / "summary.json").read_text())
    inside = []
    for name in ("accuracy", "precision", "recall", "f1_score", "roc_auc", "average_precision", "eer"):
        values = np.array([json.loads((f / "metrics.json").read_text())[name] for f in folds], dtype=float)
        # Nadeau & Bengio (2003): variance s^2 * (1/J + n_test/n_train), Student's t at J - 1 dof
        half = stats.t.ppf(0.975, len(values) - 1) * math.sqrt(values.var(ddof=1) * (1 / len(values) + ratio))
        low, high = values.mean() - half, values.mean() + half
        assert summary["ci95"][name] == [pytest.approx(max(0.0, low), abs=1e-12),
                                         pytest.approx(min(1.0, high), abs=1e-12)], name
        if 0 < low and high < 1 and half > 0.05:
            inside.append(name)
    assert len(inside) >= 3, f"only {inside} unclipped: the test would not see the interval's width"
