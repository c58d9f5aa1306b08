"""Which video goes where: k stratified (group-aware) folds, each with a validation part.

Splits depend only on the data table and the seed; each fold's split is saved as
``fold_<k>/split.parquet`` and read back on resume, so a resumed run trains on
exactly the videos it started with.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from fvc_core.errors import UserError

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


def _check_counts(table: pl.DataFrame, folds: int, grouped: bool) -> None:
    unit = "groups" if grouped else "videos"
    for label, name in CLASS_NAMES.items():
        rows = table.filter(pl.col("label") == label)
        n = rows["group"].n_unique() if grouped else rows.height
        # Each fold's test part needs one, and its training part two (one stays for validation).
        need = max(folds, 3)
        if n < need:
            raise UserError(
                f"data: {n} {name} {unit} (label {label}) are too few for trainer.folds={folds}: "
                f"each fold needs {name} {unit} in its test, validation and training parts "
                f"(at least {need}); add videos or lower trainer.folds"
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
    _check_counts(table, folds, grouped)

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
    n_splits = int(min(max(2, round(1 / val_fraction)), n_groups))
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
    tmp = path.with_suffix(".parquet.tmp")
    split.table.write_parquet(tmp)
    tmp.replace(path)


def load_or_make_splits(table: pl.DataFrame, run_dir: Path, folds: int, val_fraction: float,
                        seed: int) -> list[FoldSplit]:
    """The run's saved splits, or new ones (saved now, before any training)."""
    fresh = make_splits(table, folds, val_fraction, seed)
    result = []
    for split in fresh:
        path = split_path(run_dir, split.fold)
        if path.exists():
            saved = FoldSplit(split.fold, pl.read_parquet(path))
            if set(saved.table["video_path"].to_list()) != set(split.table["video_path"].to_list()):
                raise UserError(
                    f"{path}: saved split lists other videos than the data table now does; "
                    "the data changed since this run started: use --fresh or another output_dir"
                )
            result.append(saved)
        else:
            save_split(split, path)
            result.append(split)
    return result
