"""A table's label column read as fvc's classes, 0 (real) and 1 (fake).

Shared by every plugin that reads a table of videos (the loaders' dataset and ``fvc evaluate``,
fvc-faces' ``prepare --faces``), so that one label means the same class wherever it is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fvc_core.errors import UserError

if TYPE_CHECKING:
    import polars as pl

SHOWN = 5  # bad values listed in an error line before "..."


def listing(values: list[Any]) -> str:
    """The first few values, then how many there are in all."""
    shown = ", ".join(repr(v) for v in values[:SHOWN])
    return shown + (f", ... ({len(values)} in all)" if len(values) > SHOWN else "")


def labels_as_classes(column: pl.Series, names: dict[str, int], where: str) -> pl.Series:
    """0/1 from integer, 0.0/1.0 float or named labels (``names``: name -> class, any case); a UserError
    listing what is not, prefixed with ``where``."""
    import polars as pl

    if column.dtype == pl.Boolean:
        raise UserError(f"{where} is boolean; use 0 (real) / 1 (fake) or names such as 'real'/'fake'")
    if column.dtype.is_numeric():
        values = column.cast(pl.Float64)
        bad = sorted(set(values.filter(~values.is_in([0.0, 1.0])).to_list()))
        if bad:
            raise UserError(f"{where} has values other than 0 (real) and 1 (fake): {listing(bad)}")
        return values.cast(pl.Int64)
    text = column.cast(pl.String).str.strip_chars()
    # Names match whatever their case; 0/1 written as text are always accepted.
    lookup = {"0": 0, "1": 1} | {k.strip().lower(): v for k, v in names.items()}
    classes = text.str.to_lowercase().replace_strict(lookup, default=None, return_dtype=pl.Int64)
    unknown = sorted(set(text.filter(classes.is_null()).to_list()))
    if unknown:
        accepted = ", ".join(repr(k) for k in names) + ", 0, 1"
        raise UserError(f"{where} has unknown labels {listing(unknown)} (accepted: {accepted})")
    return classes
