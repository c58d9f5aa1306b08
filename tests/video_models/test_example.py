"""examples/video.yaml is a valid experiment with the trainer settings docs/video_models.md measured
against a bare loop of the same network (a change to either must be measured again)."""

from __future__ import annotations

from fvc_core.config import load_config
from tests.conftest import REPO


def test_the_video_example_validates_with_the_measured_trainer_settings():
    config = load_config(REPO / "examples" / "video.yaml")
    trainer = config.trainer.config
    assert config.model.name == "r2plus1d" and config.data.config.sampler == "window"
    assert (trainer.grad_accum, trainer.warmup_epochs, trainer.lr_schedule) == (1, 0, "constant")
    assert trainer.max_grad_norm is None and trainer.refit is True
    stopping = trainer.early_stopping
    assert (stopping.metric, stopping.patience, stopping.keep, stopping.min_epochs) == ("val_loss", 4, "last", None)
