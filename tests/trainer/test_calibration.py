"""Calibration in every fold's metrics (ece_15, brier, log_loss) and temperature scaling fitted on validation only."""

from __future__ import annotations

import json
import math

import numpy as np
import polars as pl
import pytest
import torch
from pydantic import ValidationError
from sklearn.calibration import calibration_curve
from sklearn.metrics import log_loss

from fvc_core.training.calibration import (
    apply_temperature,
    calibration_metrics,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)
from fvc_core.training.metrics import compute_metrics
from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import TinyDataset, make_job, small_config


@pytest.fixture(autouse=True)
def _few_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_ece_of_a_hand_checked_example():
    # 15 bins of width 1/15: 0.05 and 0.06 share bin 0 (no fake: gap 0.055), 0.5 sits alone in bin 7
    # (a fake: gap 0.5), 0.95 and 1.0 share bin 14 (both fakes: gap 0.025).
    labels, probs = [0, 0, 1, 1, 1], [0.05, 0.06, 0.5, 0.95, 1.0]
    expected = (2 * 0.055 + 1 * 0.5 + 2 * 0.025) / 5
    assert expected_calibration_error(labels, probs) == pytest.approx(expected)
    assert compute_metrics(labels, probs)["ece_15"] == pytest.approx(expected)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ece_matches_sklearn_calibration_curve_weighted_by_bin_counts(seed):
    rng = np.random.default_rng(seed)
    probs = rng.uniform(size=400) ** 2
    labels = (rng.uniform(size=400) < np.sqrt(probs)).astype(int)  # miscalibrated on purpose
    prob_true, prob_pred = calibration_curve(labels, probs, n_bins=15, strategy="uniform")
    counts, _ = np.histogram(probs, bins=np.linspace(0, 1, 16))
    reference = float(np.sum(counts[counts > 0] / len(probs) * np.abs(prob_true - prob_pred)))
    assert expected_calibration_error(labels, probs) == pytest.approx(reference, abs=1e-12)
    bins = reliability_bins(labels, probs)
    assert bins["count"] == counts.tolist()
    assert [v for v in bins["fake_share"] if v is not None] == pytest.approx(prob_true)


def test_calibration_metrics_in_every_compute_metrics_and_defined_for_one_class():
    m = compute_metrics([1, 1, 1], [0.2, 0.7, 0.9])
    assert m["brier"] == pytest.approx(((0.8) ** 2 + 0.3 ** 2 + 0.1 ** 2) / 3)
    assert m["log_loss"] == pytest.approx(-(math.log(0.2) + math.log(0.7) + math.log(0.9)) / 3)
    assert math.isnan(m["roc_auc"]) and not math.isnan(m["ece_15"])


def test_temperature_recovers_the_overconfidence_and_minimises_the_log_loss():
    rng = np.random.default_rng(3)
    z = rng.normal(0, 4, size=4000)
    labels = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-z / 2.5))).astype(int)  # true T = 2.5
    probs = 1 / (1 + np.exp(-z))
    t = fit_temperature(labels, probs)
    assert t == pytest.approx(2.5, rel=0.1)
    grid = np.exp(np.linspace(np.log(0.5), np.log(10), 400))
    best = grid[np.argmin([log_loss(labels, apply_temperature(probs, g), labels=[0, 1]) for g in grid])]
    assert t == pytest.approx(best, rel=0.02)
    before, after = calibration_metrics(labels, probs), calibration_metrics(labels, apply_temperature(probs, t))
    assert after["ece_15"] < before["ece_15"] and after["log_loss"] < before["log_loss"]


def test_refit_with_temperature_is_refused():
    with pytest.raises(ValidationError, match="calibration=temperature fits T on the validation part"):
        small_config(calibration="temperature", refit=True)


class ChangedVideos(TinyDataset):
    """TinyDataset whose videos in ``changed`` read as other content (their scores change, nothing else)."""

    def __init__(self, changed: set[str]):
        super().__init__()
        self.changed = changed

    def read_video(self, path, *, augment=False, seed=0):
        clip = super().read_video(path, augment=augment, seed=seed)
        return (255 - clip) if path in self.changed else clip


def _train(out, dataset):
    job = make_job(out, small_config(calibration="temperature"), dataset=dataset)
    SupervisedTrainer(job.config.trainer.config).run(job)
    return out / "tiny_model", job


def test_temperature_is_fitted_on_validation_never_on_test(tmp_path):
    run_dir, job = _train(tmp_path / "a", TinyDataset())
    split = pl.read_parquet(run_dir / "fold_0" / "split.parquet")
    test_videos = set(split.filter(pl.col("part") == "test")["video_path"].to_list())
    # The same training, but every test video reads as something else: test scores move, T must not.
    run_b, _ = _train(tmp_path / "b", ChangedVideos(test_videos))
    # fold 0 only: its test videos train fold 1.
    for fold in ("fold_0",):
        a = json.loads((run_dir / fold / "metrics.json").read_text())
        b = json.loads((run_b / fold / "metrics.json").read_text())
        pa = pl.read_parquet(run_dir / fold / "predictions.parquet")
        pb = pl.read_parquet(run_b / fold / "predictions.parquet")
        assert pa["score_uncalibrated"].to_list() != pb["score_uncalibrated"].to_list()
        assert a["temperature"] == b["temperature"]
        assert a["calibration"]["fitted_on"] == "validation" and a["calibration"]["n_fitted_on"] > 0
        # The score used is the model's own with its logit divided by T, and the file says so.
        assert pa["score"].to_list() == pytest.approx(apply_temperature(pa["score_uncalibrated"].to_list(),
                                                                        a["temperature"]))
        assert set(pa["calibration"].to_list()) == {f"temperature {a['temperature']:.6g}"}
        # Before and after, each recomputable from predictions.parquet.
        labels = pa["label"].to_list()
        assert a["ece_15"] == pytest.approx(expected_calibration_error(labels, pa["score"].to_list()))
        assert a["uncalibrated_brier"] == pytest.approx(
            calibration_metrics(labels, pa["score_uncalibrated"].to_list())["brier"])
    folds = job.trackers.folds
    assert {"ece_15", "brier", "log_loss", "temperature", "uncalibrated_log_loss"} <= set(folds[0].metrics)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert {"ece_15", "brier", "log_loss", "temperature"} <= set(summary["mean"])


def test_without_calibration_scores_are_the_models_own(tmp_path):
    job = make_job(tmp_path, small_config(epochs=1))
    SupervisedTrainer(job.config.trainer.config).run(job)
    fold = tmp_path / "tiny_model" / "fold_0"
    metrics = json.loads((fold / "metrics.json").read_text())
    predictions = pl.read_parquet(fold / "predictions.parquet")
    assert metrics["calibration"] == {"method": "none"} and "temperature" not in metrics
    assert "score_uncalibrated" not in predictions.columns
    assert metrics["brier"] == pytest.approx(calibration_metrics(predictions["label"].to_list(),
                                                                 predictions["score"].to_list())["brier"])
