"""A backbone gets a lower learning rate only when the model says it is pretrained, or the user asks."""

from __future__ import annotations

import pytest
import torch

from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import TinyModel, make_job, small_config

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class PretrainedTinyModel(TinyModel):
    """TinyModel whose features stand for weights loaded from elsewhere."""

    backbone_pretrained = True


def _train(tmp_path, model=TinyModel, **overrides):
    config = small_config(folds=2, epochs=2, warmup_epochs=0, lr=1e-2, **overrides)
    job = make_job(tmp_path, config, model=model)
    SupervisedTrainer(config).run(job)
    first = next(m for fold, _, m, _ in job.trackers.epochs if fold == 0)
    return job, first


def test_a_backbone_trained_from_scratch_learns_at_the_head_rate(tmp_path):
    # TinyModel offers parameter_groups() but says nothing about pretraining: its backbone must
    # not be slowed down (the trap: 5e-6 on a from-scratch backbone, 100x below lr).
    job, first = _train(tmp_path, backbone_lr=None)
    assert first["lr_backbone"] == pytest.approx(first["lr"])
    out = job.output.getvalue()
    assert "backbone lr 0.01 (trained from scratch: lr" in out, out
    # Every epoch line names the rates in force (after epoch 1 of 2, cosine is half way).
    assert "epoch 1/2: 2 optimiser steps" in out and "lr 0.005, lr_backbone 0.005" in out, out


def test_a_pretrained_backbone_gets_a_hundredth_of_lr(tmp_path):
    job, first = _train(tmp_path, model=PretrainedTinyModel, backbone_lr=None)
    assert first["lr_backbone"] == pytest.approx(first["lr"] / 100)
    assert "backbone lr 0.0001 (pretrained backbone: lr/100" in job.output.getvalue()


def test_the_users_backbone_lr_wins(tmp_path):
    job, first = _train(tmp_path, backbone_lr=3e-3)
    assert first["lr_backbone"] == pytest.approx(3e-3 * first["lr"] / 1e-2)
    assert "backbone lr 0.003 (trainer.backbone_lr" in job.output.getvalue()


def test_the_optimiser_really_uses_the_rate(tmp_path):
    # Not only the logged number: one AdamW step with warm-up 0 moves a from-scratch backbone weight
    # by about lr (Adam's first step is lr * sign(grad)), not lr/100.
    from fvc_core.training.loop import parameter_groups

    config = small_config(backbone_lr=None, lr=1e-2, weight_decay=0.0)
    model = TinyModel()
    conv = model.features[0].weight
    before = conv.detach().clone()
    optimizer = torch.optim.AdamW(parameter_groups(model, config), lr=config.lr, weight_decay=0.0)
    x = torch.randint(0, 255, (2, 2, 3, 8, 8), dtype=torch.uint8)
    torch.nn.functional.cross_entropy(model(x), torch.tensor([0, 1])).backward()
    optimizer.step()
    moved = (conv.detach() - before).abs()
    assert moved[conv.grad != 0].max().item() == pytest.approx(1e-2, rel=1e-3)


def test_default_backbone_lr_is_null():
    from fvc_core.training.config import SupervisedConfig

    assert SupervisedConfig().backbone_lr is None
