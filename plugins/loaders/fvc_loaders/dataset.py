"""The ``metadata`` dataset: a Parquet table of videos, decoded with the PyAV reader.

Every problem with the table itself (missing file or column, unknown label,
one class only, duplicated videos) is a one-line ``UserError`` naming the table
and the column, raised by ``table()`` before any video is decoded. Problems
with a video are ``BadVideoError`` from ``read_video``; the trainer applies
``on_bad_video``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fvc_core.contract import UserError, one_line
from fvc_loaders.config import MetadataConfig
from fvc_loaders.index import table_layout

if TYPE_CHECKING:
    import polars as pl
    import torch

# The columns every dataset table of fvc has (see fvc_core.hookspecs.register_datasets).
OUTPUT_COLUMNS = ("video_path", "label", "group")
_SHOWN = 5  # bad values listed in an error line before "..."


def _listing(values: list[Any]) -> str:
    shown = ", ".join(repr(v) for v in values[:_SHOWN])
    return shown + (f", ... ({len(values)} in all)" if len(values) > _SHOWN else "")


def read_table(path: str | Path) -> pl.DataFrame:
    """A Parquet table, or a UserError naming the file."""
    import polars as pl

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: metadata table not found")
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a file that is not Parquet
        raise UserError(f"{path}: cannot read the metadata table as Parquet ({one_line(exc, with_type=False)})"
                        ) from None


def resolve_paths(paths: pl.Series, base: Path) -> pl.Series:
    """Absolute, normalised paths: relative ones are taken from ``base`` (the table's folder)."""
    import polars as pl

    base = base.resolve()
    out = [os.path.normpath(p if os.path.isabs(p) else os.path.join(base, p)) for p in paths.to_list()]
    return pl.Series(paths.name, out, dtype=pl.String)


def _labels_as_classes(column: pl.Series, names: dict[str, int], where: str) -> pl.Series:
    """0/1 from integer, 0.0/1.0 float or named labels; a UserError listing what is not."""
    import polars as pl

    if column.dtype == pl.Boolean:
        raise UserError(f"{where} is boolean; use 0 (real) / 1 (fake) or names such as 'real'/'fake'")
    if column.dtype.is_numeric():
        values = column.cast(pl.Float64)
        bad = sorted(set(values.filter(~values.is_in([0.0, 1.0])).to_list()))
        if bad:
            raise UserError(f"{where} has values other than 0 (real) and 1 (fake): {_listing(bad)}")
        return values.cast(pl.Int64)
    text = column.cast(pl.String).str.strip_chars()
    # Names match whatever their case; 0/1 written as text are always accepted.
    lookup = {"0": 0, "1": 1} | {k.strip().lower(): v for k, v in names.items()}
    classes = text.str.to_lowercase().replace_strict(lookup, default=None, return_dtype=pl.Int64)
    unknown = sorted(set(text.filter(classes.is_null()).to_list()))
    if unknown:
        accepted = ", ".join(repr(k) for k in names) + ", 0, 1"
        raise UserError(f"{where} has unknown labels {_listing(unknown)} (accepted: {accepted})")
    return classes


def load_table(config: MetadataConfig) -> pl.DataFrame:
    """The table of ``config.metadata`` in fvc's form: absolute ``video_path``, ``label`` 0/1, ``group``.

    Columns other than the video, label and group columns are kept after these
    three. A missing group value means the video is its own group.
    """
    import polars as pl

    path = Path(config.metadata)
    raw = read_table(path)
    # A table that names its groups (`fvc index --layout` writes one) is split by them unless told
    # otherwise: ignoring it would let a source and its fakes straddle train and test, silently.
    group_column = config.group_column
    if group_column is None and "group" in raw.columns:
        group_column = "group"
    columns = [config.video_column, config.label_column]
    if group_column:
        columns.append(group_column)
    for col in columns:
        if col not in raw.columns:
            raise UserError(f"{path}: no column {col!r} (columns: {', '.join(raw.columns) or 'none'})")
    if raw.height == 0:
        raise UserError(f"{path}: the table has no rows")

    videos = raw[config.video_column]
    if videos.dtype != pl.String:
        raise UserError(f"{path}: column {config.video_column!r} must hold paths as text, not {videos.dtype}")
    missing = videos.is_null() | (videos.str.strip_chars() == "")
    if missing.any():
        rows = missing.arg_true().to_list()
        raise UserError(f"{path}: column {config.video_column!r} is empty in rows {_listing(rows)}")
    video_path = resolve_paths(videos, path.parent).alias("video_path")

    dup = video_path.is_duplicated()
    if dup.any():
        twice = sorted(set(videos.filter(dup).to_list()))
        raise UserError(f"{path}: column {config.video_column!r} lists the same video twice: {_listing(twice)}")

    labels = raw[config.label_column]
    where = f"{path}: column {config.label_column!r}"
    if labels.is_null().any():
        raise UserError(f"{where} is empty in rows {_listing(labels.is_null().arg_true().to_list())}")
    label = _labels_as_classes(labels, config.labels, where).alias("label")
    classes = set(label.unique().to_list())
    if len(classes) < 2:
        only = "real (0)" if classes == {0} else "fake (1)"
        raise UserError(f"{where}: every video is {only}; a detector needs both real (0) and fake (1) videos")

    if group_column:
        group_col = raw[group_column].cast(pl.String)
        group = pl.Series("group", [g if g is not None else p for g, p in zip(group_col, video_path, strict=True)])
    else:
        group = video_path.alias("group")

    used = set(columns) | set(OUTPUT_COLUMNS)
    others = [raw[c] for c in raw.columns if c not in used]
    return pl.DataFrame([video_path, label, group, *others])


def prepared_with(table: str | Path) -> dict[str, Any] | None:
    """What ``fvc prepare`` recorded of how it made the clips of ``table`` (its prepare.json, beside the
    table it wrote), whole: later steps (a face crop) add their settings to that same file."""
    import json

    from fvc_loaders.prepare import SETTINGS

    path = Path(table).parent / SETTINGS
    if not path.is_file():
        return None
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: cannot read what fvc prepare recorded ({one_line(exc, with_type=False)}); "
                        "it says how the table's clips were made") from None
    return found if isinstance(found, dict) else {"settings": found}


class MetadataDataset:
    """A dataset plugin object (see ``fvc_core.hookspecs.register_datasets``) over a Parquet table."""

    name = "metadata"

    def __init__(self, config: MetadataConfig):
        self.config = config

    @property
    def on_bad_video(self) -> str:
        return self.config.on_bad_video

    def table(self) -> pl.DataFrame:
        return load_table(self.config)

    def read_video(self, path: str | Path, *, augment: bool = False, seed: int = 0) -> torch.Tensor:
        """uint8 ``(num_frames, 3, size, size)``; ``BadVideoError`` naming the file when it cannot be read."""
        from fvc_loaders.reader import read_clip

        augment_seed = seed if (augment and self.config.augment) else None
        return read_clip(path, self.config.num_frames, self.config.size, augment_seed=augment_seed)

    def protocol(self) -> dict[str, Any]:
        return {
            "dataset": self.name,
            "metadata": str(self.config.metadata),
            "layout": table_layout(self.config.metadata),
            "prepare": prepared_with(self.config.metadata),
            "num_frames": self.config.num_frames,
            "size": self.config.size,
            "sampler": "uniform-time",
            "letterbox": True,
            "augment": self.config.augment,
            "on_bad_video": self.config.on_bad_video,
            "decoder": "pyav",
        }


def build_metadata_dataset(config: MetadataConfig) -> MetadataDataset:
    return MetadataDataset(config)
