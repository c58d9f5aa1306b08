"""Splits as written to split.parquet: a grouped validation part is carved from the training side,
and a run whose table changed (same length, other videos or labels) is refused."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from fvc_core.errors import UserError
from fvc_core.training.splits import load_or_make_splits, split_path
from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import TinyDataset, make_job, small_config


def grouped_table(n_sources: int = 20) -> pl.DataFrame:
    # Two fakes per real source video, all in the source's group (as a deepfake dataset is built).
    paths, labels, groups = [], [], []
    for i in range(n_sources):
        for kind, label in (("real", 0), ("fake_a", 1), ("fake_b", 1)):
            paths.append(f"/v/{kind}_{i:02d}.mp4")
            labels.append(label)
            groups.append(f"src{i:02d}")
    return pl.DataFrame({"video_path": paths, "label": labels, "group": groups})


@pytest.mark.parametrize("val_fraction", [0.2, 0.34])
def test_grouped_validation_part_is_the_small_side_of_the_training_videos(tmp_path, val_fraction):
    load_or_make_splits(grouped_table(), tmp_path, folds=4, val_fraction=val_fraction, seed=2)
    for fold in range(4):
        split = pl.read_parquet(split_path(tmp_path, fold))
        groups = {part: set(split.filter(pl.col("part") == part)["group"]) for part in ("train", "val", "test")}
        # Every source in exactly one part; the validation part about val_fraction of the non-test sources.
        assert groups["train"] | groups["val"] | groups["test"] == set(split["group"])
        assert not (groups["train"] & groups["val"]) and not (groups["val"] & groups["test"])
        share = len(groups["val"]) / (len(groups["val"]) + len(groups["train"]))
        assert share == pytest.approx(val_fraction, abs=0.1), (fold, share)
        assert len(groups["train"]) > len(groups["val"])


def finished_tiny_run(tmp_path, dataset: TinyDataset):
    torch.set_num_threads(1)
    config = small_config(epochs=1)
    SupervisedTrainer(config).run(make_job(tmp_path, config, dataset=dataset))
    return config


def rerun(tmp_path, config, dataset: TinyDataset):
    return SupervisedTrainer(config).run(make_job(tmp_path, config, dataset=dataset))


def test_a_renamed_video_with_the_same_count_is_refused(tmp_path):
    config = finished_tiny_run(tmp_path, TinyDataset())
    changed = TinyDataset()
    table = changed.table()
    changed._table = table.with_columns(
        pl.when(pl.col("video_path") == "/mem/real_03.mp4").then(pl.lit("/mem/real_99.mp4"))
        .otherwise(pl.col("video_path")).alias("video_path")).with_columns(pl.col("video_path").alias("group"))
    assert changed.table().height == table.height
    with pytest.raises(UserError, match=r"fold_\d/split\.parquet: .*--fresh"):
        rerun(tmp_path, config, changed)


def test_a_flipped_label_is_refused_even_for_finished_folds(tmp_path):
    config = finished_tiny_run(tmp_path, TinyDataset())
    before = (tmp_path / "tiny_model/fold_0/metrics.json").read_text()
    changed = TinyDataset()
    changed._table = changed.table().with_columns(
        pl.when(pl.col("video_path") == "/mem/fake_02.mp4").then(0).otherwise(pl.col("label")).alias("label"))
    with pytest.raises(UserError, match=r"fold_\d/split\.parquet: .*label.*--fresh"):
        rerun(tmp_path, config, changed)
    assert (tmp_path / "tiny_model/fold_0/metrics.json").read_text() == before


def test_the_same_table_in_another_row_order_is_accepted(tmp_path):
    config = finished_tiny_run(tmp_path, TinyDataset())
    same = TinyDataset()
    same._table = same.table().reverse()
    summary = rerun(tmp_path, config, same)
    assert [f.fold for f in summary.folds] == [0, 1]
