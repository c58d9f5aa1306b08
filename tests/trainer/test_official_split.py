"""trainer.split: official -- one fold from the table's own train/val/test column (a dataset's published
protocol), never k-fold over it."""

from __future__ import annotations

import json

import polars as pl
import pytest
import torch
from pydantic import ValidationError

from fvc_core.errors import UserError
from fvc_core.training.config import SupervisedConfig
from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import TinyDataset, make_job, small_config


class OfficialDataset(TinyDataset):
    """TinyDataset whose table carries a `split` column (and groups), as `fvc index --layout` writes."""

    def __init__(self, split: list[str | None], **kwargs):
        super().__init__(n_real=len(split) // 2, n_fake=len(split) // 2, groups=True, **kwargs)
        self._table = self._table.with_columns(pl.Series("split", split, dtype=pl.String))


# 10 real + 10 fake; a fake shares its real video's group, and both lie in the same official part.
PUBLISHED = ["train"] * 6 + ["val"] * 2 + ["test"] * 2
SPLIT = PUBLISHED + PUBLISHED


def official(**overrides) -> SupervisedConfig:
    return small_config(**{k: v for k, v in {"folds": 1, "split": "official", "epochs": 1, **overrides}.items()})


def test_the_published_parts_are_the_folds_parts(tmp_path):
    torch.set_num_threads(1)
    dataset = OfficialDataset(SPLIT)
    job = make_job(tmp_path, official(), dataset=dataset)
    summary = SupervisedTrainer(official()).run(job)
    run_dir = tmp_path / "tiny_model"
    assert sorted(p.name for p in run_dir.iterdir() if p.is_dir()) == ["fold_0"]
    saved = pl.read_parquet(run_dir / "fold_0/split.parquet").sort("video_path")
    expected = dataset.table().sort("video_path")
    assert saved["part"].to_list() == expected["split"].to_list()  # nothing re-split, nothing carved
    metrics = json.loads((run_dir / "fold_0/metrics.json").read_text())
    assert metrics["n"] == 4  # the published test part, scored once
    assert [r.fold for r in summary.folds] == [0]


def test_without_a_published_validation_part_one_is_carved_from_train_only(tmp_path):
    dataset = OfficialDataset([s if s != "val" else "train" for s in SPLIT])  # Celeb-DF: train and test only
    job = make_job(tmp_path, official(), dataset=dataset)
    SupervisedTrainer(official()).run(job)
    saved = pl.read_parquet(tmp_path / "tiny_model/fold_0/split.parquet").sort("video_path")
    given = dataset.table().sort("video_path")["split"].to_list()
    parts = saved["part"].to_list()
    assert [p for p, g in zip(parts, given, strict=True) if g == "test"] == ["test"] * 4  # test untouched
    assert {p for p, g in zip(parts, given, strict=True) if g == "train"} == {"train", "val"}
    assert set(saved.filter(pl.col("part") == "val")["label"].to_list()) == {0, 1}


@pytest.mark.parametrize("split, message", [
    (None, "needs a 'split' column"),
    (["train"] * 16 + ["test"] * 2 + ["dev"] * 2, "only train, val and test are official parts"),
    (["train"] * 8 + ["test"] * 2 + ["train"] * 8 + ["val"] * 2, "lie in two official parts"),
])
def test_a_table_that_cannot_give_the_published_split_is_one_line(tmp_path, split, message):
    dataset = TinyDataset(n_real=10, n_fake=10, groups=True) if split is None else OfficialDataset(split)
    with pytest.raises(UserError, match=message) as caught:
        SupervisedTrainer(official()).run(make_job(tmp_path, official(), dataset=dataset))
    assert len(str(caught.value).splitlines()) == 1


def test_official_is_one_fold_and_kfold_at_least_two():
    assert SupervisedConfig(split="official").folds == 1
    with pytest.raises(ValidationError, match="set trainer.folds=1 or leave it out"):
        SupervisedConfig(split="official", folds=5)
    with pytest.raises(ValidationError, match="at least 2 folds"):
        SupervisedConfig(folds=1)
