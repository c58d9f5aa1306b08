import polars as pl
import pytest

from fvc_core.errors import UserError
from fvc_core.training.splits import load_or_make_splits, make_splits, split_path


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
    # A different seed would split differently, but a resumed run keeps what it started with.
    again = load_or_make_splits(table(), tmp_path, folds=2, val_fraction=0.2, seed=1)
    assert all(x.table.equals(y.table) for x, y in zip(first, again, strict=True))
    with pytest.raises(UserError, match="split.parquet: saved split lists other videos"):
        load_or_make_splits(table(n_real=11), tmp_path, folds=2, val_fraction=0.2, seed=0)
