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
