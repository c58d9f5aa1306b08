"""fvc results replays a fold's epochs through the trainer's EarlyStopping to rank sweep points by the
validation value the trainer kept: it must skip the epochs before early_stopping.min_epochs as the
trainer does (issue 35), or a point ranks by an epoch the trainer could not keep."""

from __future__ import annotations

import json

import torch
from fvc_duckdb.results import _min_epochs

from fvc_core.training.schedule import EarlyStopping
from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import make_job, small_config


def test_the_replay_keeps_the_value_the_trainer_kept(tmp_path):
    torch.set_num_threads(1)
    # min_delta no later loss beats: the trainer's best is the first epoch it may keep (2 of 4).
    config = small_config(epochs=4, warmup_epochs=0, early_stopping={"min_delta": 100.0, "patience": None})
    job = make_job(tmp_path, config)
    SupervisedTrainer(config).run(job)
    recorded = json.dumps(job.config.as_dict())
    assert _min_epochs(recorded) == 2
    for fold in range(2):
        fold_dir = tmp_path / "tiny_model" / f"fold_{fold}"
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        replay = EarlyStopping("val_loss", "min", None, 100.0, min_epochs=_min_epochs(recorded))
        for h in json.loads((fold_dir / "history.json").read_text()):
            replay.update(h["val_loss"], h["epoch"], h["val_loss"])
        assert metrics["best_metric_epoch"] == 2 == replay.best_epoch
        assert replay.best == metrics["best_metric_value"]


def test_a_run_recorded_before_min_epochs_replays_every_epoch():
    older = {"trainer": {"epochs": 8, "early_stopping": {"patience": 5, "metric": "val_loss"}}}
    assert _min_epochs(json.dumps(older)) == 1
    newer = {"trainer": {"epochs": 8, "early_stopping": {"min_epochs": None}}}
    assert _min_epochs(json.dumps(newer)) == 4
    assert _min_epochs(json.dumps({"trainer": {"epochs": 3, "early_stopping": {"min_epochs": 9}}})) == 3
