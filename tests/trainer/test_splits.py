import collections
import itertools

import polars as pl
import pytest

from fvc_core.errors import UserError
from fvc_core.training.splits import load_or_make_splits, make_splits, split_path, table_fingerprint


def table(n_real=10, n_fake=10, groups=False):
    paths = [f"/v/r{i:02d}.mp4" for i in range(n_real)] + [f"/v/f{i:02d}.mp4" for i in range(n_fake)]
    group = [f"s{i % n_real}" for i in range(n_real + n_fake)] if groups else paths
    return pl.DataFrame({"video_path": paths, "label": [0] * n_real + [1] * n_fake, "group": group})


def test_every_video_is_tested_once_and_parts_are_stratified():
    splits = make_splits(table(), folds=5, val_fraction=0.25, seed=1)
    tested = pl.concat([s.part("test") for s in splits])["video_path"].to_list()
    assert sorted(tested) == sorted(table()["video_path"].to_list())
    for s in splits:
        for part in ("train", "val", "test"):
            labels = s.part(part)["label"].to_list()
            assert labels.count(0) == labels.count(1), (s.fold, part)


def test_groups_never_straddle_parts():
    splits = make_splits(table(12, 24, groups=True), folds=3, val_fraction=0.2, seed=3)
    for s in splits:
        parts_per_group = s.table.group_by("group").agg(pl.col("part").n_unique())
        assert parts_per_group["part"].max() == 1
        assert set(s.part("val")["label"].to_list()) == {0, 1}


def test_splits_depend_on_seed_and_data_only():
    a = make_splits(table(), folds=3, val_fraction=0.2, seed=5)
    shuffled = table().sample(fraction=1.0, shuffle=True, seed=99)
    b = make_splits(shuffled, folds=3, val_fraction=0.2, seed=5)
    c = make_splits(table(), folds=3, val_fraction=0.2, seed=6)
    assert all(x.table.equals(y.table) for x, y in zip(a, b, strict=True))
    assert not all(x.table.equals(y.table) for x, y in zip(a, c, strict=True))


@pytest.mark.parametrize("groups", [False, True])
def test_too_few_of_a_class_is_one_clear_error(groups):
    with pytest.raises(UserError, match=r"real .*too few for trainer.folds=5"):
        make_splits(table(n_real=4, n_fake=20, groups=groups), folds=5, val_fraction=0.2, seed=0)


def test_saved_splits_are_reused_and_checked(tmp_path):
    first = load_or_make_splits(table(), tmp_path, folds=2, val_fraction=0.2, seed=0)
    assert split_path(tmp_path, 1).exists()
    again = load_or_make_splits(table(), tmp_path, folds=2, val_fraction=0.2, seed=0)
    assert all(x.table.equals(y.table) for x, y in zip(first, again, strict=True))
    with pytest.raises(UserError, match=r"split.parquet: the data table lists other videos .*1 video\(s\) added"):
        load_or_make_splits(table(n_real=11), tmp_path, folds=2, val_fraction=0.2, seed=0)
    # Compared row for row, not by set of paths or length: same videos, other split.
    with pytest.raises(UserError, match=r"split.parquet: the same table now splits differently"):
        load_or_make_splits(table(), tmp_path, folds=2, val_fraction=0.2, seed=1)


def test_saved_splits_are_compared_label_and_group_included(tmp_path):
    load_or_make_splits(table(groups=True), tmp_path, folds=2, val_fraction=0.2, seed=0)
    flipped = table(groups=True).with_columns(
        pl.when(pl.col("video_path") == "/v/f03.mp4").then(0).otherwise(pl.col("label")).alias("label"))
    with pytest.raises(UserError, match=r"the labels of 1 video\(s\) changed .*/v/f03.mp4: 1 -> 0.*--fresh"):
        load_or_make_splits(flipped, tmp_path, folds=2, val_fraction=0.2, seed=0)
    regrouped = table(groups=True).with_columns(
        pl.when(pl.col("video_path") == "/v/f03.mp4").then(pl.lit("s9")).otherwise(pl.col("group")).alias("group"))
    with pytest.raises(UserError, match=r"the groups of 1 video\(s\) changed .*/v/f03.mp4: s3 -> s9"):
        load_or_make_splits(regrouped, tmp_path, folds=2, val_fraction=0.2, seed=0)


def test_the_fingerprint_ignores_row_order_only():
    base = table(groups=True)
    assert table_fingerprint(base) == table_fingerprint(base.reverse())
    assert table_fingerprint(base) != table_fingerprint(base.with_columns(pl.col("label").reverse()))
    assert table_fingerprint(base) != table_fingerprint(base.with_columns(pl.col("group").reverse()))


def grid_table(n_real: int, n_fake: int, grouping: str) -> pl.DataFrame:
    paths = [f"/v/r{i:02d}.mp4" for i in range(n_real)] + [f"/v/f{i:02d}.mp4" for i in range(n_fake)]
    labels = [0] * n_real + [1] * n_fake
    group = {
        "none": paths,
        "source": [f"s{i % n_real}" for i in range(n_real + n_fake)],  # a fake in its real source's group
        "pairs": [f"{'rf'[lab]}{i // 2}" for i, lab in enumerate(labels)],  # two videos per group
        "one": [*paths[:-1], "odd"],  # grouped because of one row only
    }[grouping]
    return pl.DataFrame({"video_path": paths, "label": labels, "group": group})


def test_every_small_table_gives_valid_splits_or_one_user_error():
    """Too few videos for the folds and val_fraction asked is a UserError naming the keys to change,
    never an exception from scikit-learn (3 real + 3 fake with folds=2 was 'The least populated class
    in y has only 1 member')."""
    outcomes = collections.Counter()
    for n_real, n_fake, folds, val_fraction, grouping in itertools.product(
            (1, 2, 3, 4, 5, 8), (2, 3, 4, 6), (2, 3, 5), (0.05, 0.2, 0.5, 0.9), ("none", "source", "pairs", "one")):
        case = (n_real, n_fake, folds, val_fraction, grouping)
        try:
            splits = make_splits(grid_table(n_real, n_fake, grouping), folds, val_fraction, seed=0)
        except UserError as exc:
            assert "\n" not in str(exc) and "trainer." in str(exc), case
            outcomes["refused"] += 1
            continue
        outcomes["split"] += 1
        for s in splits:
            for part in ("train", "val", "test"):
                assert set(s.part(part)["label"].to_list()) == {0, 1}, (case, s.fold, part)
    assert outcomes["refused"] and outcomes["split"]
    with pytest.raises(UserError, match=r"3 real videos .* too few for trainer.folds=2"):
        make_splits(grid_table(3, 3, "none"), folds=2, val_fraction=0.2, seed=0)
