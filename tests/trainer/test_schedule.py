import math

import pytest

from fvc_core.training.schedule import EarlyStopping, warmup_cosine


def test_linear_warmup_then_cosine_to_zero():
    f = warmup_cosine(warmup_steps=4, total_steps=12)
    assert [f(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == 1.0
    assert f(8) == pytest.approx(0.5)
    assert f(12) == pytest.approx(0.0)
    assert all(f(s) >= f(s + 1) for s in range(4, 12))


def test_no_warmup_starts_at_full_lr():
    assert warmup_cosine(0, 10)(0) == 1.0


def test_early_stopping_patience_and_modes():
    es = EarlyStopping("val_auc", "max", patience=2)
    assert es.update(0.6, 1) and es.update(0.7, 2)
    assert not es.update(0.7, 3) and not es.stopped
    assert not es.update(0.65, 4) and es.stopped and es.best_epoch == 2
    low = EarlyStopping("val_loss", "min", patience=None)
    assert low.update(1.0, 1) and low.update(0.5, 2) and not low.update(0.6, 3)
    assert not low.stopped


def test_undefined_metric_never_beats_a_defined_one():
    es = EarlyStopping("val_auc", "max", patience=5)
    assert es.update(math.nan, 1)          # the first epoch is kept, so model.pt always exists
    assert es.update(0.5, 2)               # a defined value beats an undefined best
    assert not es.update(math.nan, 3)
    restored = EarlyStopping("val_auc", "max", patience=5)
    restored.load_state_dict(es.state_dict())
    assert restored == es


def test_constant_schedule_warms_up_then_keeps_the_peak_rate():
    from fvc_core.training.schedule import warmup_constant

    factor = warmup_constant(4)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert {factor(s) for s in range(4, 1000)} == {1.0}
    assert warmup_constant(0)(0) == 1.0


def test_a_run_with_the_constant_schedule_trains_its_last_epoch_at_the_peak_rate(tmp_path):
    import json

    import torch

    from fvc_core.training.trainer import SupervisedTrainer
    from tests.trainer.helpers import make_job, small_config

    torch.set_num_threads(1)
    config = small_config(folds=2, epochs=3, warmup_epochs=1, lr_schedule="constant")
    SupervisedTrainer(config).run(make_job(tmp_path, config))
    history = json.loads((tmp_path / "tiny_model/fold_0/history.json").read_text())
    assert [row["lr"] for row in history] == [config.lr] * 3
    assert [row["lr_backbone"] for row in history] == [config.backbone_lr] * 3
