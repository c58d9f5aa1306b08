"""early_stopping.min_epochs: no epoch before it is kept, none counts against patience (issue 35).

On a validation part of 3-5 videos the loss of an untrained first epoch was often never beaten; the
fold stopped at epoch 5 and its epoch-1 model scored the test part (docs/video_models.md).
"""

from __future__ import annotations

import json

import pytest
import torch

from fvc_core.training.config import SupervisedConfig
from fvc_core.training.schedule import EarlyStopping
from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import make_job, small_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _folds(tmp_path):
    for fold in range(2):
        fold_dir = tmp_path / "tiny_model" / f"fold_{fold}"
        yield (json.loads((fold_dir / "metrics.json").read_text()),
               json.loads((fold_dir / "history.json").read_text()),
               torch.load(fold_dir / "model.pt", weights_only=True)["epoch"])


def test_epochs_before_min_epochs_are_neither_kept_nor_counted():
    es = EarlyStopping("val_loss", "min", patience=1, min_epochs=3)
    assert not es.update(0.1, 1) and not es.update(0.9, 2)    # a lower loss early does not count
    assert not es.stopped and es.best_epoch is None
    assert es.update(0.8, 3) and es.best_epoch == 3           # the first candidate
    assert not es.update(0.85, 4) and es.stopped


def test_a_real_run_never_keeps_an_epoch_before_min_epochs(tmp_path):
    # min_delta no later loss can beat: without min_epochs epoch 1 stays best and patience 1 stops
    # the fold at epoch 2 (what the issue saw); with it, epoch 3 is the first that may be kept.
    config = small_config(epochs=5, warmup_epochs=0,
                          early_stopping={"patience": 1, "min_delta": 100.0, "min_epochs": 3})
    SupervisedTrainer(config).run(make_job(tmp_path, config))
    for metrics, history, model_epoch in _folds(tmp_path):
        assert metrics["best_epoch"] == 3 == model_epoch
        assert [h["epoch"] for h in history] == [1, 2, 3, 4]  # stopped after one bad epoch past 3


def test_by_default_the_first_half_of_the_epochs_is_never_kept(tmp_path):
    config = small_config(epochs=4, warmup_epochs=0, early_stopping={"min_delta": 100.0})
    assert config.early_stopping.min_epochs is None
    SupervisedTrainer(config).run(make_job(tmp_path, config))
    for metrics, _, model_epoch in _folds(tmp_path):
        assert metrics["best_epoch"] == 2 == model_epoch


def test_min_epochs_beyond_the_budget_keeps_the_last_epoch(tmp_path):
    config = small_config(epochs=2, warmup_epochs=0, early_stopping={"min_epochs": 10})
    SupervisedTrainer(config).run(make_job(tmp_path, config))
    for metrics, _, model_epoch in _folds(tmp_path):
        assert metrics["best_epoch"] == 2 == model_epoch


def test_min_epochs_must_be_positive():
    with pytest.raises(ValueError, match="min_epochs"):
        SupervisedConfig(early_stopping={"min_epochs": 0})


def test_a_smoke_run_of_one_epoch_is_not_refused_for_a_warm_up_it_never_set():
    """`trainer.epochs=1` alone: the default 2-epoch warm-up shrinks to half the run; a warm-up the user
    wrote longer than the run is still refused, in one line without pydantic's "Value error," prefix."""
    from pydantic import ValidationError

    from fvc_core.plugins import validation_problems

    assert SupervisedConfig(epochs=1).warmup_epochs == 0.5
    assert SupervisedConfig(epochs=3).warmup_epochs == 2
    with pytest.raises(ValidationError) as raised:
        SupervisedConfig(epochs=1, warmup_epochs=2)
    assert validation_problems(raised.value, "trainer") == ["trainer: warmup_epochs=2.0 is longer than epochs=1"]
