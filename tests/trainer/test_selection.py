"""Which epoch a fold keeps: ties on a saturated metric, patience during warm-up."""

from __future__ import annotations

import json

import pytest
import torch

from fvc_core.training.schedule import EarlyStopping
from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import make_job, small_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_a_tie_on_the_metric_goes_to_the_lower_val_loss():
    es = EarlyStopping("val_auc", "max", patience=3)
    assert es.update(0.9, 1, tiebreak=0.6)
    assert es.update(1.0, 2, tiebreak=0.5)
    assert es.update(1.0, 3, tiebreak=0.3)        # same AUC, better loss: the later epoch is kept
    assert not es.update(1.0, 4, tiebreak=0.4)    # same AUC, worse loss
    assert es.best_epoch == 3 and es.bad_epochs == 1


def test_a_tie_resets_patience_only_when_it_wins():
    es = EarlyStopping("val_auc", "max", patience=2)
    es.update(1.0, 1, tiebreak=0.6)
    es.update(1.0, 2, tiebreak=0.5)
    es.update(1.0, 3, tiebreak=0.4)
    assert not es.stopped and es.best_epoch == 3  # saturated AUC, loss still falling: keep training
    es.update(1.0, 4, tiebreak=0.45)
    es.update(1.0, 5, tiebreak=0.46)
    assert es.stopped and es.best_epoch == 3


def test_warmup_epochs_do_not_count_against_patience():
    es = EarlyStopping("val_loss", "min", patience=1, grace_epochs=2)
    assert es.update(0.7, 1)
    assert not es.update(0.8, 2) and not es.stopped  # still warming up
    assert not es.update(0.75, 3) and es.stopped


def test_the_state_of_an_older_checkpoint_still_loads():
    # last.pt written before tie-breaks existed has no best_tiebreak: resume must not fail.
    es = EarlyStopping("val_auc", "max", patience=3)
    es.load_state_dict({"metric": "val_auc", "mode": "max", "patience": 3, "min_delta": 0.0, "best": 1.0,
                        "best_epoch": 2, "bad_epochs": 0, "stopped": False})
    assert es.update(1.0, 3, tiebreak=0.2) and es.best_epoch == 3


def test_a_fold_keeps_the_lowest_loss_epoch_among_those_of_the_best_auc(tmp_path):
    # The tiny dataset is easy: val_auc reaches 1.0 in the first epochs while val_loss keeps falling.
    config = small_config(epochs=6, warmup_epochs=1, grad_accum=2, lr=3e-2, backbone_lr=None,
                          early_stopping={"metric": "val_auc", "patience": None, "min_epochs": 1})
    job = make_job(tmp_path, config)
    SupervisedTrainer(config).run(job)
    checked = 0
    for fold in range(2):
        fold_dir = tmp_path / "tiny_model" / f"fold_{fold}"
        history = json.loads((fold_dir / "history.json").read_text())
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        top = max(h["val_auc"] for h in history)
        tied = [h for h in history if h["val_auc"] == top]
        expected = min(tied, key=lambda h: (h["val_loss"], h["epoch"]))["epoch"]
        assert metrics["best_epoch"] == expected, (fold, [(h["val_auc"], h["val_loss"]) for h in history])
        assert torch.load(fold_dir / "model.pt", weights_only=True)["epoch"] == expected
        checked += len(tied) > 1 and expected != tied[0]["epoch"]
    assert checked, "no fold had a tie decided by val_loss: the test would not see the fix"


def test_the_default_selection_metric_does_not_saturate():
    # val_auc reaches 1.0 on a handful of validation videos long before training is done; val_loss
    # keeps ranking epochs (issue 18's measurements in docs/trainer.md).
    from fvc_core.training.config import SupervisedConfig

    assert SupervisedConfig().early_stopping.metric == "val_loss"
    assert SupervisedConfig().early_stopping.resolved_mode() == "min"


def _model_epoch(fold_dir) -> int:
    return torch.load(fold_dir / "model.pt", weights_only=True)["epoch"]


def test_keep_last_scores_the_last_epoch_when_no_early_stop_happened(tmp_path):
    # patience larger than the budget: the fold runs every epoch, so `last` keeps epoch 4 whatever
    # the validation loss did, and says which epoch the metric preferred.
    config = small_config(epochs=4, warmup_epochs=0, lr=3e-2, backbone_lr=None,
                          early_stopping={"patience": 10, "keep": "last", "min_epochs": 1})
    SupervisedTrainer(config).run(make_job(tmp_path, config))
    differed = 0
    for fold in range(2):
        fold_dir = tmp_path / "tiny_model" / f"fold_{fold}"
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        history = json.loads((fold_dir / "history.json").read_text())
        best = min(history, key=lambda h: (h["val_loss"], h["epoch"]))["epoch"]
        assert metrics["best_epoch"] == 4 and _model_epoch(fold_dir) == 4
        assert metrics["best_metric_epoch"] == best
        assert metrics["kept"] == ("last" if best != 4 else "best")
        differed += best != 4
    assert differed, "the validation loss was lowest at the last epoch in every fold: the test would not see keep"


def test_keep_last_still_keeps_the_best_epoch_when_early_stopping_ended_the_fold(tmp_path):
    # min_delta no validation loss can beat: epoch 1 stays best and patience 1 stops the fold at epoch 2.
    config = small_config(epochs=5, warmup_epochs=0,
                          early_stopping={"patience": 1, "keep": "last", "min_delta": 100.0, "min_epochs": 1})
    SupervisedTrainer(config).run(make_job(tmp_path, config))
    for fold in range(2):
        fold_dir = tmp_path / "tiny_model" / f"fold_{fold}"
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        assert len(json.loads((fold_dir / "history.json").read_text())) == 2
        assert metrics["best_epoch"] == 1 == _model_epoch(fold_dir) and metrics["kept"] == "best"


def test_keep_last_with_refit_trains_the_refit_for_every_epoch(tmp_path):
    config = small_config(epochs=4, warmup_epochs=0, refit=True, lr=3e-2, backbone_lr=None,
                          early_stopping={"patience": None, "keep": "last", "min_epochs": 1})
    SupervisedTrainer(config).run(make_job(tmp_path, config))
    differed = 0
    for fold in range(2):
        metrics = json.loads((tmp_path / "tiny_model" / f"fold_{fold}" / "metrics.json").read_text())
        assert metrics["refit_epochs"] == 4 and metrics["best_epoch"] == 4
        differed += metrics["best_metric_epoch"] != 4
    assert differed, "the validation loss was lowest at the last epoch in every fold: the test would not see keep"
