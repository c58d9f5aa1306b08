"""The ``metadata`` dataset: a Parquet table of videos, decoded with the PyAV reader.

Every problem with the table itself (missing file or column, unknown label,
one class only, duplicated videos) is a one-line ``UserError`` naming the table
and the column, raised by ``table()`` before any video is decoded. Problems
with a video are ``BadVideoError`` from ``read_video``; the trainer applies
``on_bad_video``.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fvc_core.contract import UserError, labels_as_classes, one_line
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
    """A Parquet table (or a ``.csv`` one, as pandas or a spreadsheet writes it: a UTF-8 BOM, CRLF
    line ends, quoted commas, UTF-16 or UTF-32 with a byte-order mark), or a UserError naming the file."""
    import polars as pl

    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: metadata table not found")
    if path.suffix.lower() == ".csv":
        text = _csv_text(path)
        try:
            # The whole file decides each column's type: a column of numbers with one name further
            # down is text, not a parse error at that row.
            return pl.read_csv(text, infer_schema_length=None)
        except Exception as exc:  # polars raises several types for a malformed file
            raise UserError(f"{path}: cannot read the metadata table as CSV ({one_line(exc, with_type=False)}); "
                            "save it as UTF-8 CSV with a header row") from None
    try:
        return pl.read_parquet(path)
    except Exception as exc:  # polars raises several types for a file that is not Parquet
        raise UserError(f"{path}: cannot read the metadata table as Parquet ({one_line(exc, with_type=False)})"
                        ) from None


# Byte-order marks of the Unicode encodings a spreadsheet may save "Unicode text" in; UTF-32's first,
# since its little-endian mark starts with UTF-16's.
_BOMS = (("utf-32", (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)),
         ("utf-16", (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)),
         ("utf-8-sig", (codecs.BOM_UTF8,)))


def _csv_text(path: Path) -> bytes:
    """The CSV file as UTF-8 bytes for polars: UTF-16 or UTF-32 with a byte-order mark decoded; a file
    that is not text in a known encoding is a UserError naming it, never an error line of raw bytes."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the metadata table ({one_line(exc, with_type=False)})") from None
    encoding = next((name for name, marks in _BOMS if data.startswith(marks)), "utf-8")
    cannot = f"{path}: cannot read the metadata table as CSV (not {encoding.upper().removesuffix('-SIG')} text"
    save_as = "save it as UTF-8 CSV with a header row"
    if encoding == "utf-8" and b"\0" in data:
        # UTF-16 without a byte-order mark: a NUL beside every ASCII character. No text holds NUL bytes.
        raise UserError(f"{cannot}: NUL bytes, UTF-16 without a byte-order mark?); {save_as}")
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise UserError(f"{cannot}: byte {exc.object[exc.start]:#04x} at offset {exc.start}, saved in a legacy "
                        f"code page such as Windows-1252?); {save_as}") from None
    return text.encode("utf-8")


def resolve_paths(paths: pl.Series, base: Path) -> pl.Series:
    """Absolute, normalised paths: relative ones are taken from ``base`` (the table's folder)."""
    import polars as pl

    base = base.resolve()
    out = [os.path.normpath(p if os.path.isabs(p) else os.path.join(base, p)) for p in paths.to_list()]
    return pl.Series(paths.name, out, dtype=pl.String)


def load_table(config: MetadataConfig) -> pl.DataFrame:
    """The table of ``config.metadata`` in fvc's form: absolute ``video_path``, ``label`` 0/1, ``group``.

    Columns other than the video, label and group columns are kept after these
    three. A missing group value means the video is its own group.
    """
    path = Path(config.metadata)
    return check_table(read_table(path), where=path, base_dir=path.parent, video_column=config.video_column,
                       label_column=config.label_column, group_column=config.group_column, labels=config.labels)


def check_table(
    raw: pl.DataFrame,
    *,
    where: str | Path,
    base_dir: str | Path,
    video_column: str = "video_path",
    label_column: str = "label",
    group_column: str | None = None,
    labels: dict[str, int] | None = None,
) -> pl.DataFrame:
    """Any table of videos (read from Parquet, CSV, a database...) checked and put in fvc's form.

    ``where`` names the table in error lines; relative video paths are taken from ``base_dir``;
    ``group_column`` None uses a ``group`` column when there is one, '' turns grouping off;
    ``labels`` maps label names to 0 (real) / 1 (fake), 0/1 always accepted. A UserError in one
    line for a missing column, an empty or repeated video, an unknown label, one class only.
    """
    import polars as pl

    path = where
    labels = {"real": 0, "fake": 1} if labels is None else labels
    # A table that names its groups (`fvc index --layout` writes one) is split by them unless told
    # otherwise: ignoring it would let a source and its fakes straddle train and test, silently.
    if group_column is None and "group" in raw.columns:
        group_column = "group"
    columns = {"video_column": video_column, "label_column": label_column}
    if group_column:
        columns["group_column"] = group_column
    for key, col in columns.items():
        if col not in raw.columns:
            raise UserError(f"{path}: no column {col!r} (columns: {', '.join(raw.columns) or 'none'}; "
                            f"data.{key} names another)")
    if raw.height == 0:
        raise UserError(f"{path}: the table has no rows")

    videos = raw[video_column]
    if videos.dtype != pl.String:
        raise UserError(f"{path}: column {video_column!r} must hold paths as text, not {videos.dtype}")
    missing = videos.is_null() | (videos.str.strip_chars() == "")
    if missing.any():
        rows = missing.arg_true().to_list()
        raise UserError(f"{path}: column {video_column!r} is empty in rows {_listing(rows)}")
    video_path = resolve_paths(videos, Path(base_dir)).alias("video_path")

    dup = video_path.is_duplicated()
    if dup.any():
        twice = sorted(set(videos.filter(dup).to_list()))
        raise UserError(f"{path}: column {video_column!r} lists the same video twice: {_listing(twice)}")

    label_values = raw[label_column]
    at = f"{path}: column {label_column!r}"
    if label_values.is_null().any():
        raise UserError(f"{at} is empty in rows {_listing(label_values.is_null().arg_true().to_list())}")
    label = labels_as_classes(label_values, labels, at).alias("label")
    classes = set(label.unique().to_list())
    if len(classes) < 2:
        only = "real (0)" if classes == {0} else "fake (1)"
        raise UserError(f"{at}: every video is {only}; a detector needs both real (0) and fake (1) videos")

    if group_column:
        group_col = raw[group_column].cast(pl.String)
        group = pl.Series("group", [g if g is not None else p for g, p in zip(group_col, video_path, strict=True)])
    else:
        group = video_path.alias("group")

    used = set(columns.values()) | set(OUTPUT_COLUMNS)
    others = [raw[c] for c in raw.columns if c not in used]
    return pl.DataFrame([video_path, label, group, *others])


def missing_videos(table: pl.DataFrame, where: str | Path, on_bad_video: str) -> list[str]:
    """The videos of ``table`` that are not files: a UserError under ``fail``, a note under ``skip``."""
    paths = table["video_path"].to_list()
    missing = [p for p in paths if not os.path.isfile(p)]
    if not missing:
        return []
    what = f"{where}: {len(missing)} of {len(paths)} videos listed do not exist: {_listing(missing)}"
    if on_bad_video == "fail":
        raise UserError(f"{what} (on_bad_video: skip would leave them out)")
    return [f"{what}; on_bad_video: skip leaves them out"]


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
        if config.decoder != "pyav":
            from fvc_loaders.decoders import get_decoder

            get_decoder(config.decoder)  # an unknown name or a decoder that cannot load: one line, now
        # Refused here, in one line, if the cache folder is not fvc's: before any training starts.
        _ = self._cache

    @property
    def _cache(self) -> Any:
        """The clip cache ``data.cache`` names, or None. Made on first use too: a subclass of another
        plugin (fvc_loaders.api) whose ``__init__`` only sets ``self.config`` still gets it."""
        if "_clip_cache" not in self.__dict__:
            folder = getattr(self.config, "cache", None)
            if folder is None:
                self.__dict__["_clip_cache"] = None
            else:
                from fvc_loaders.cache import ClipCache

                self.__dict__["_clip_cache"] = ClipCache(folder, int(self.config.cache_max_gb * 1e9))
        return self.__dict__["_clip_cache"]

    @property
    def on_bad_video(self) -> str:
        return self.config.on_bad_video

    def table(self) -> pl.DataFrame:
        return load_table(self.config)

    def check(self) -> list[str]:
        """What ``fvc check`` can tell without decoding: the table (file, columns, labels, both classes)
        and that every video it lists exists. Missing videos are an error under ``on_bad_video: fail``
        (the run would stop at the first), a note under ``skip``."""
        return missing_videos(self.table(), self.config.metadata, self.config.on_bad_video)

    def read_video(self, path: str | Path, *, augment: bool = False, seed: int = 0) -> torch.Tensor:
        """uint8 ``(T, 3, size, size)``; ``BadVideoError`` naming the file when it cannot be read.

        With ``sampler: window``, a training read (``augment=True``: the trainer's
        seed is one per seed, fold, epoch and video) is one window drawn from
        ``seed``, so a rerun or a resumed run reads the same windows; an
        evaluation read is ``clips_per_video`` evenly placed windows, stacked
        ``(clips_per_video, T, 3, size, size)`` when there are several (the
        trainer scores each and averages their fake probabilities,
        ``fvc_core.training.clips``).
        """
        from fvc_loaders.reader import read_clip, read_windows

        c = self.config
        augment_seed = seed if (augment and c.augment) else None
        if c.sampler == "window" and augment:
            # A new window every epoch: nothing to reuse, so never cached.
            assert c.clip_len is not None  # the config requires it with sampler: window
            return read_windows(path, c.clip_len, c.size, fps=c.fps, seed=seed, augment_seed=augment_seed,
                                decoder=c.decoder)[0]
        if c.sampler == "uniform":
            def make() -> torch.Tensor:
                return read_clip(path, c.num_frames, c.size, decoder=c.decoder)
        else:
            def make() -> torch.Tensor:
                assert c.clip_len is not None
                clips = read_windows(path, c.clip_len, c.size, fps=c.fps, count=c.clips_per_video, decoder=c.decoder)
                return clips[0] if c.clips_per_video == 1 else clips
        clip = self._cache.clip(path, self.clip_settings(), make) if self._cache is not None else make()
        if augment_seed is not None:  # after the cache, so every epoch gets its own draw
            from fvc_loaders.augment import augment_clip

            clip = augment_clip(clip, augment_seed)
        return clip

    def clip_settings(self) -> dict[str, Any]:
        """Every setting that shapes an unaugmented clip (the cache's key, beside the video's content)."""
        c = self.config
        if c.sampler == "uniform":
            return {"sampler": "uniform", "num_frames": c.num_frames, "size": c.size, "decoder": c.decoder}
        return {"sampler": "window", "clip_len": c.clip_len, "fps": c.fps, "clips_per_video": c.clips_per_video,
                "size": c.size, "decoder": c.decoder}

    def protocol(self) -> dict[str, Any]:
        c = self.config
        sampler: dict[str, Any] = {"sampler": "uniform-time", "num_frames": c.num_frames}
        if c.sampler == "window":
            sampler = {"sampler": "window", "num_frames": c.clip_len, "clip_len": c.clip_len,
                       "fps": c.fps if c.fps is not None else "video", "train_windows": "one random per epoch",
                       "clips_per_video": c.clips_per_video,
                       "clip_aggregation": "mean fake probability" if c.clips_per_video > 1 else "none"}
        # A subclass reading its own table (fvc_loaders.api) may have no `metadata` key.
        source = {"metadata": str(c.metadata), "layout": table_layout(c.metadata),
                  "prepare": prepared_with(c.metadata)} if hasattr(c, "metadata") else {}
        return {
            "dataset": self.name,
            **source,
            **sampler,
            "size": c.size,
            "letterbox": True,
            "augment": c.augment,
            "on_bad_video": c.on_bad_video,
            "decoder": c.decoder,
        }


def build_metadata_dataset(config: MetadataConfig) -> MetadataDataset:
    return MetadataDataset(config)
