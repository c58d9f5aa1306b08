"""Which video goes where: k stratified (group-aware) folds, each with a validation part.

Splits depend only on the data table and the seed; each fold's split is saved as
``fold_<k>/split.parquet`` and read back on resume, so a resumed run trains on
exactly the videos it started with.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from fvc_core.atomic import write_atomic
from fvc_core.errors import UserError, one_line

PARTS = ("train", "val", "test")
CLASS_NAMES = {0: "real", 1: "fake"}


@dataclass
class FoldSplit:
    fold: int
    table: pl.DataFrame
    """video_path, label, group, part (train/val/test)."""

    def part(self, name: str) -> pl.DataFrame:
        return self.table.filter(pl.col("part") == name)


def _grouped(table: pl.DataFrame) -> bool:
    return bool((table["group"] != table["video_path"]).any())


def _needed(folds: int) -> int:
    """Fewest videos (groups) of a class that fit every part of every fold: each fold's test part
    takes up to ceil(n / folds) of them and its training part must keep 2 (one goes to validation)."""
    n = max(folds, 3)
    while n - math.ceil(n / folds) < 2:
        n += 1
    return n


def _check_counts(table: pl.DataFrame, folds: int, val_fraction: float, grouped: bool) -> None:
    unit = "groups" if grouped else "videos"
    need = _needed(folds)
    for label, name in CLASS_NAMES.items():
        rows = table.filter(pl.col("label") == label)
        n = rows["group"].n_unique() if grouped else rows.height
        if n < need:
            raise UserError(
                f"data: {n} {name} {unit} (label {label}) are too few for trainer.folds={folds}: "
                f"each fold needs {name} {unit} in its test, validation and training parts "
                f"(at least {need}); add videos or change trainer.folds"
            )
    if not grouped:
        # The validation part is max(2, round(val_fraction * n)) videos and the training side keeps 2.
        # Stratified folds cut each class separately, so a test part holds up to ceil(n_c / folds) of each.
        counts = table["label"].value_counts()["count"].to_list()
        smallest_train = table.height - sum(math.ceil(n / folds) for n in counts)
        n_val = max(2, int(round(val_fraction * smallest_train)))
        if smallest_train - n_val < 2:
            raise UserError(
                f"data: trainer.val_fraction={val_fraction} takes {n_val} of the {smallest_train} videos of a "
                f"fold's training part, leaving fewer than 2 to train on; lower trainer.val_fraction or add videos"
            )


def make_splits(table: pl.DataFrame, folds: int, val_fraction: float, seed: int) -> list[FoldSplit]:
    """k folds of the table; raises UserError when a class is too small to appear in every part."""
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    labels = set(table["label"].unique().to_list())
    if not labels <= {0, 1}:
        raise UserError(f"data: labels must be 0 (real) or 1 (fake), got {sorted(labels)}")
    # Row order must not matter: a reordered but identical table gives the same folds.
    table = table.select("video_path", "label", "group").sort("video_path")
    grouped = _grouped(table)
    _check_counts(table, folds, val_fraction, grouped)

    y = table["label"].to_numpy()
    groups = table["group"].to_numpy()
    with warnings.catch_warnings():
        # sklearn warns about small classes; the checks here turn that into one clear error instead.
        warnings.simplefilter("ignore", UserWarning)
        if grouped:
            outer = list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(y, y, groups))
        else:
            outer = list(StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(y, y))
        val_parts = [_validation_part(y, groups, train_idx, val_fraction, seed + 1000 * (fold + 1), grouped)
                     for fold, (train_idx, _) in enumerate(outer)]

    result = []
    for fold, ((_, test_idx), val_idx) in enumerate(zip(outer, val_parts, strict=True)):
        part = np.full(len(y), "train", dtype=object)
        part[test_idx] = "test"
        part[val_idx] = "val"
        split = FoldSplit(fold, table.with_columns(pl.Series("part", part.tolist(), dtype=pl.String)))
        _check_fold(split, grouped)
        result.append(split)
    return result


def make_official_split(table: pl.DataFrame, val_fraction: float, seed: int) -> list[FoldSplit]:
    """One fold from the table's own ``split`` column (train / val / test: a dataset's published
    protocol, as ``fvc index --layout`` writes it). Without ``val`` rows, a validation part is carved
    from ``train`` as k-fold does (group-aware); test stays exactly the published one."""
    labels = set(table["label"].unique().to_list())
    if not labels <= {0, 1}:
        raise UserError(f"data: labels must be 0 (real) or 1 (fake), got {sorted(labels)}")
    if "split" not in table.columns:
        raise UserError("trainer.split: official needs a 'split' column (train/val/test) in the data table, as "
                        "`fvc index --layout` writes; this table has none: use trainer.split=kfold")
    table = table.select("video_path", "label", "group", pl.col("split").cast(pl.String)).sort("video_path")
    given = table["split"].fill_null("")
    odd = sorted(set(given.to_list()) - set(PARTS))
    if odd:
        rows = table.filter(~given.is_in(PARTS))["video_path"].to_list()
        raise UserError(f"trainer.split: official: the table's split column holds {odd} for {len(rows)} video(s) "
                        f"(e.g. {rows[0]}); only train, val and test are official parts")
    grouped = _grouped(table)
    if grouped:
        straddling = table.group_by("group").agg(pl.col("split").n_unique()).filter(pl.col("split") > 1)
        if straddling.height:
            raise UserError(f"trainer.split: official: group(s) {straddling['group'].to_list()[:3]} lie in two "
                            "official parts; the split would leak a source between training and test")
    part = given.to_numpy().astype(object)
    if "val" not in set(part.tolist()):
        y = table["label"].to_numpy()
        train_idx = np.flatnonzero(part == "train")
        if len(np.unique(y[train_idx])) < 2:
            raise UserError("trainer.split: official: the train part lacks real or fake videos")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            part[_validation_part(y, table["group"].to_numpy(), train_idx, val_fraction, seed + 1000, grouped)] = "val"
    split = FoldSplit(0, table.drop("split").with_columns(pl.Series("part", part.tolist(), dtype=pl.String)))
    for name in PARTS:
        present = set(split.part(name)["label"].to_list())
        missing = [CLASS_NAMES[c] for c in CLASS_NAMES if c not in present]
        if missing:
            raise UserError(f"trainer.split: official: the {name} part has no {' or '.join(missing)} video; a "
                            "detector is trained, chosen and tested on both classes")
    return [split]


def _validation_part(y: np.ndarray, groups: np.ndarray, train_idx: np.ndarray, val_fraction: float,
                     seed: int, grouped: bool) -> np.ndarray:
    """Indices (into the table) of the validation part carved from a fold's training part."""
    from sklearn.model_selection import StratifiedGroupKFold, train_test_split

    y_train = y[train_idx]
    if not grouped:
        n_val = max(2, int(round(val_fraction * len(train_idx))))
        _, val = train_test_split(train_idx, test_size=n_val, stratify=y_train, random_state=seed)
        return np.sort(val)
    # Group-aware: one of round(1/val_fraction) stratified group folds (capped by the group count), the
    # first whose validation and training sides both hold each class: with few groups, stratification
    # alone can leave a class out.
    n_groups = len(np.unique(groups[train_idx]))
    # sklearn refuses more splits than the larger class has videos; fewer than 2 splits is no split at all.
    largest_class = int(np.bincount(y_train, minlength=2).max())
    n_splits = int(min(max(2, round(1 / val_fraction)), n_groups, largest_class))
    if n_splits < 2:
        raise UserError(f"data: a fold's training part holds {n_groups} group(s), too few to carve a validation "
                        "part from: add videos (groups) or lower trainer.folds")
    inner = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    candidates = [val for _, val in inner.split(y_train, y_train, groups[train_idx])]
    for val_pos in candidates:
        rest = np.setdiff1d(np.arange(len(train_idx)), val_pos)
        if len(np.unique(y_train[val_pos])) == 2 and len(np.unique(y_train[rest])) == 2:
            return np.sort(train_idx[val_pos])
    return np.sort(train_idx[candidates[0]])


def _check_fold(split: FoldSplit, grouped: bool) -> None:
    for part in PARTS:
        present = set(split.part(part)["label"].to_list())
        for label, name in CLASS_NAMES.items():
            if label not in present:
                unit = "groups" if grouped else "videos"
                raise UserError(
                    f"data: fold {split.fold} has no {name} video in its {part} part; too few {name} "
                    f"{unit} for trainer.folds / trainer.val_fraction: add videos, lower trainer.folds "
                    "or raise trainer.val_fraction"
                )
    if grouped:
        straddling = split.table.group_by("group").agg(pl.col("part").n_unique()).filter(pl.col("part") > 1)
        if straddling.height:  # sklearn's group folds guarantee this; a failure here is a bug in fvc
            raise AssertionError(f"fold {split.fold}: groups in two parts: {straddling['group'].to_list()[:3]}")


def split_path(run_dir: Path, fold: int) -> Path:
    return Path(run_dir) / f"fold_{fold}" / "split.parquet"


def save_split(split: FoldSplit, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, split.table.write_parquet)


def table_fingerprint(table: pl.DataFrame) -> str:
    """sha256 of the table's (video_path, label, group) rows in video_path order: a table with other
    videos, labels or groups has another fingerprint; the row order does not matter."""
    rows = table.select("video_path", "label", "group").sort("video_path")
    return hashlib.sha256(rows.write_csv().encode()).hexdigest()


def _read_split(path: Path, fold: int) -> FoldSplit:
    try:
        saved = pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a damaged file
        raise UserError(f"{path}: unreadable saved split ({one_line(exc, 120, with_type=False)}); delete "
                        f"{path.parent} to train fold {fold} again, or use --fresh") from None
    if saved.columns != ["video_path", "label", "group", "part"]:
        raise UserError(f"{path}: not a saved split (columns {saved.columns}); use --fresh or another output_dir")
    return FoldSplit(fold, saved)


def _difference(saved: pl.DataFrame, fresh: pl.DataFrame) -> str:
    """What changed between a saved split and the one the table gives now, in words."""
    old, new = set(saved["video_path"].to_list()), set(fresh["video_path"].to_list())
    if old != new:
        added, removed = sorted(new - old), sorted(old - new)
        parts = [f"{len(added)} video(s) added (e.g. {added[0]})"] if added else []
        parts += [f"{len(removed)} removed (e.g. {removed[0]})"] if removed else []
        return "the data table lists other videos than when this run started: " + ", ".join(parts)
    joined = saved.sort("video_path").join(fresh.sort("video_path"), on="video_path", suffix="_now")
    for column, what in (("label", "labels"), ("group", "groups")):
        changed = joined.filter(pl.col(column) != pl.col(f"{column}_now"))
        if changed.height:
            first = changed.row(0, named=True)
            return (f"the {what} of {changed.height} video(s) changed since this run started (e.g. "
                    f"{first['video_path']}: {first[column]} -> {first[f'{column}_now']})")
    return ("the same table now splits differently (trainer.folds, trainer.val_fraction, seed or the "
            "scikit-learn version changed since this run started)")


def load_or_make_splits(table: pl.DataFrame, run_dir: Path, folds: int, val_fraction: float,
                        seed: int, official: bool = False) -> list[FoldSplit]:
    """The run's saved splits, or new ones (saved now, before any training).

    A saved split must equal, row for row (video_path, label, group, part), the split the table
    gives now: a run whose table changed is refused, finished folds included, rather than mixing
    folds trained on two different tables.
    """
    fresh = make_official_split(table, val_fraction, seed) if official else make_splits(table, folds,
                                                                                          val_fraction, seed)
    result = []
    for split in fresh:
        path = split_path(run_dir, split.fold)
        if path.exists():
            saved = _read_split(path, split.fold)
            if not saved.table.sort("video_path").equals(split.table):
                raise UserError(f"{path}: {_difference(saved.table, split.table)}; a run's folds must all use "
                                "one table: use --fresh or another output_dir")
            result.append(saved)
        else:
            save_split(split, path)
            result.append(split)
    return result
