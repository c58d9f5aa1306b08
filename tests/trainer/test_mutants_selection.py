"""Which way a validation metric is better, on a real run: early stopping on ``val_eer`` keeps the
epoch of the lowest equal error rate (a mutant that maximised it kept the worst epoch and passed
every test). The ranking of a sweep on it is in tests/sweeps/test_mutants_ranking.py."""

from __future__ import annotations

import json

import torch

from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import TinyDataset, make_job, small_config


class CloseDataset(TinyDataset):
    """Fakes only a little brighter than reals: the validation EER moves from epoch to epoch
    instead of sitting at 0 as on the easy tiny dataset."""

    def read_video(self, path: str, *, augment: bool = False, seed: int = 0) -> torch.Tensor:
        clip = super().read_video(path, augment=augment, seed=seed).int()
        return (clip + (-25 if "fake" in path else 25)).clamp(0, 255).to(torch.uint8)


def test_early_stopping_on_val_eer_keeps_the_epoch_of_the_lowest_eer(tmp_path):
    torch.set_num_threads(1)
    config = small_config(epochs=5, warmup_epochs=0, grad_accum=2, lr=3e-2, backbone_lr=None, val_fraction=0.5,
                          early_stopping={"metric": "val_eer", "patience": None, "min_epochs": 1})
    SupervisedTrainer(config).run(make_job(tmp_path, config, dataset=CloseDataset(10, 10), seed=0))
    moved = 0
    for fold in range(2):
        fold_dir = tmp_path / "tiny_model" / f"fold_{fold}"
        history = json.loads((fold_dir / "history.json").read_text())
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        # the lowest val_eer; a tie goes to the lower val_loss, then to the earlier epoch
        expected = min(history, key=lambda h: (h["val_eer"], h["val_loss"], h["epoch"]))
        shown = [(h["epoch"], h["val_eer"], round(h["val_loss"], 4)) for h in history]
        assert metrics["best_metric"] == "val_eer", metrics
        assert metrics["best_epoch"] == expected["epoch"], shown
        assert metrics["best_metric_value"] == expected["val_eer"], shown
        assert torch.load(fold_dir / "model.pt", weights_only=True)["epoch"] == expected["epoch"]
        moved += max(h["val_eer"] for h in history) > expected["val_eer"]
    assert moved, "val_eer was the same at every epoch of every fold: the test would not see its direction"
