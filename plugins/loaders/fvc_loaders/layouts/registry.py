"""Which layouts exist: every enabled ``fvc`` plugin module may define ``register_layouts(register)``.

The core's plugin loader imports each entry-point module of the group ``fvc`` (honouring
``-p no:NAME`` and failed imports); a module that also holds a ``register_layouts`` hook
implementation adds layouts through it, so a new dataset arrives with a ``pip install`` and
nothing in fvc is edited. ``register_layouts`` is declared in ``fvc_core/hookspecs.py`` and collected
by the core's registry like every kind (``fvc_core.contract.registered``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from fvc_core.contract import PluginError

KIND = "layouts"  # what plugins register through the hook register_layouts


@dataclass(frozen=True)
class Video:
    """One video of a dataset as its layout describes it.

    ``identities`` are the people the video shows (a fake: its target and its source); videos
    that share one end up in the same ``group``, so no identity straddles a split.
    ``split`` is the dataset's official split (train/val/test) or None where it defines none.
    ``source`` is, for a fake, the real video whose frames it is made from (the face swapped into it),
    where the layout knows it: the table's ``source_video``, so ``fvc prepare --faces`` cuts the fake
    with that video's boxes.
    """

    path: Path
    label: str  # "real" or "fake"
    identities: tuple[str, ...]
    method: str
    compression: str | None = None
    split: str | None = None
    source: Path | None = None


Reader = Callable[[Path], tuple[list[Video], list[str]]]


@dataclass(frozen=True)
class Layout:
    name: str
    read: Reader
    description: str
    plugin: str


def _load(disabled: Iterable[str]) -> tuple[dict[str, Layout], dict[str, list[str]]]:
    from fvc_core.contract import registered

    found, conflicts = registered(KIND, disabled)
    return {k: Layout(k, r.value, r.description, r.plugin) for k, r in found.items()}, conflicts


def available_layouts(disabled: Iterable[str] = ()) -> dict[str, Layout]:
    """Every registered layout by name (a name two plugins claim is left out: see ``get_layout``)."""
    layouts, conflicts = _load(disabled)
    return {k: v for k, v in layouts.items() if k not in conflicts}


def get_layout(name: str, disabled: Iterable[str] = ()) -> Layout:
    """The layout ``name``, or a one-line PluginError listing the valid names (or both providers)."""
    from fvc_core.contract import closest

    layouts, conflicts = _load(disabled)
    if name in conflicts:
        raise PluginError(f"--layout {name!r} is provided by plugins {' and '.join(map(repr, conflicts[name]))}; "
                          "disable one with -p no:NAME")
    if name not in layouts:
        raise PluginError(f"--layout {name!r}: unknown layout{closest(name, layouts)}")
    return layouts[name]
