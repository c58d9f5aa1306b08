"""trainer.refit: the validation part chooses the number of epochs, then a fresh model trained on
train + val for that many epochs scores the test part; it is the fold's model.pt."""

from __future__ import annotations

import json

import polars as pl
import pytest
import torch

from fvc_core.training import checkpoint
from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import TinyDataset, TinyModel, make_job, small_config

REFIT = {"folds": 2, "epochs": 4, "grad_accum": 2, "refit": True,
         "early_stopping": {"metric": "val_loss", "patience": None}}


def fold_outputs(run_dir, folds=2) -> list[str]:
    dirs = [run_dir / f"fold_{k}" for k in range(folds)]
    return [(d / "metrics.json").read_text() for d in dirs] + [
        pl.read_parquet(d / "predictions.parquet").write_csv() for d in dirs]


def test_refit_trains_on_train_and_val_for_the_chosen_epochs_and_its_model_scores_the_test_part(tmp_path):
    torch.set_num_threads(1)
    config = small_config(**REFIT)
    dataset = TinyDataset()
    job = make_job(tmp_path, config, dataset=dataset)
    SupervisedTrainer(config).run(job)

    run_dir = tmp_path / "tiny_model"
    for fold in range(2):
        fold_dir = run_dir / f"fold_{fold}"
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        split = pl.read_parquet(fold_dir / "split.parquet")
        val = set(split.filter(pl.col("part") == "val")["video_path"].to_list())
        test = split.filter(pl.col("part") == "test")
        assert metrics["scored_model"] == "refit"
        assert metrics["scored_model_trained_on"] == ["train", "val"]
        assert metrics["refit_epochs"] == metrics["best_epoch"] == len(metrics["refit_train_loss"])
        # Nothing of either phase is left to resume from once the fold is finished.
        assert not (fold_dir / "last.pt").exists() and not (fold_dir / "refit_last.pt").exists()

        state = checkpoint.load_safe(fold_dir / "model.pt")
        assert state["trained_on"] == "train+val" and state["epoch"] == metrics["best_epoch"]
        # model.pt is the model that scored the test part: predict gives the same scores.
        model = TinyModel()
        model.load_state_dict(state["model_state_dict"])
        model.eval()
        with torch.no_grad():
            for row in test.iter_rows(named=True):
                logits = model(dataset.read_video(row["video_path"])[None])
                expected = torch.softmax(logits, 1)[0, 1].item()
                got = pl.read_parquet(fold_dir / "predictions.parquet").filter(
                    pl.col("video_path") == row["video_path"])["score"].item()
                assert got == pytest.approx(expected, abs=1e-6)
        if fold == 0:
            # Fold 0's reads: 4 selection epochs of 6 train + 2 val, its refit epochs of 8, then 8 test.
            reads = dataset.reads[:4 * 8 + metrics["refit_epochs"] * 8 + 8]
            # The validation videos were trained on (augmented reads happen only in training), and the
            # test videos never were.
            trained = {p for p, augment, _ in reads if augment}
            assert val <= trained
            assert not trained & set(test["video_path"].to_list())
            assert {p for p, augment, _ in reads[-8:]} == set(test["video_path"].to_list())
    assert "refit on train + val (8 videos)" in job.output.getvalue()


def test_without_refit_the_best_epoch_on_val_scores_the_test_part(tmp_path):
    torch.set_num_threads(1)
    config = small_config(**{**REFIT, "refit": False})
    dataset = TinyDataset()
    SupervisedTrainer(config).run(make_job(tmp_path, config, dataset=dataset))
    fold_dir = tmp_path / "tiny_model/fold_0"
    metrics = json.loads((fold_dir / "metrics.json").read_text())
    assert metrics["scored_model"] == "best_epoch" and metrics["scored_model_trained_on"] == ["train"]
    assert checkpoint.load_safe(fold_dir / "model.pt")["trained_on"] == "train"
    val = set(pl.read_parquet(fold_dir / "split.parquet").filter(pl.col("part") == "val")["video_path"])
    assert not val & {p for p, augment, _ in dataset.reads[:4 * 8 + 8] if augment}


class InterruptInRefit(TinyDataset):
    """Ctrl-C (KeyboardInterrupt) at the first read after fold 0's refit phase checkpointed an epoch."""

    def __init__(self, refit_last):
        super().__init__()
        self.refit_last = refit_last
        self.fired = False

    def read_video(self, path, **kw):
        if not self.fired and self.refit_last.exists():
            self.fired = True
            raise KeyboardInterrupt
        return super().read_video(path, **kw)


def test_a_run_stopped_in_the_refit_phase_resumes_there_and_ends_as_an_uninterrupted_one(tmp_path):
    torch.set_num_threads(1)
    config = small_config(**REFIT)
    refit_last = tmp_path / "stopped/tiny_model/fold_0/refit_last.pt"
    job = make_job(tmp_path / "stopped", config, dataset=InterruptInRefit(refit_last))
    with pytest.raises(KeyboardInterrupt):
        SupervisedTrainer(config).run(job)
    assert refit_last.exists() and not (tmp_path / "stopped/tiny_model/fold_0/metrics.json").exists()
    state = checkpoint.load_safe(refit_last)
    assert state["phase"] == "refit" and state["epoch"] >= 1

    dataset = TinyDataset()
    job = make_job(tmp_path / "stopped", config, dataset=dataset)
    SupervisedTrainer(config).run(job)
    text = job.output.getvalue()
    # The selection phase is not trained again: fold 0 goes straight back into its refit.
    assert "fold 0 epoch" not in text
    if state["epoch"] < json.loads((tmp_path / "stopped/tiny_model/fold_0/metrics.json").read_text())["refit_epochs"]:
        assert f"resuming at epoch {state['epoch'] + 1}" in text

    torch.set_num_threads(1)
    SupervisedTrainer(config).run(make_job(tmp_path / "reference", config))
    assert fold_outputs(tmp_path / "stopped/tiny_model") == fold_outputs(tmp_path / "reference/tiny_model")
