"""``data.decoder``: which library turns a video into frames (``pyav``, the default, or a plugin's).

The sampling rules stay fvc's (``sampling``: target times, windows, the frame on screen at each
time); a decoder only answers "the pictures on screen at these times". It is an object with

- ``read(path, plan, size) -> list[np.ndarray]``: opens ``path``, calls ``plan(timeline)`` once
  with the video's ``Timeline`` (seconds) to get the target times (any order, any shape; flattened),
  or ``plan()`` for the times on fvc's reference timeline (the PyAV reader's, so that a plugin's
  decoder picks the same frames; ``OnReferenceTimeline``),
  and returns one upright picture per target, scaled to fit ``size`` x ``size`` with its aspect
  kept (``fvc_core.contract.fit``), ``(h, w, 3)`` uint8 RGB, not yet padded. Raises
  ``fvc_core.contract.BadVideoError`` (one line, naming the file) for a video it cannot read.

Another distribution adds one by defining ``register_decoders(register)`` in its ``fvc`` entry-point
module and calling ``register(name, factory, description)``; ``factory()`` builds the decoder
(import heavy libraries there). Found the same way as layouts (``layouts.registry``): enabled
plugins only, no core hookspec.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fvc_core.contract import PluginError

KIND = "decoders"  # what plugins register through the hook register_decoders
DEFAULT = "pyav"


@dataclass(frozen=True)
class Timeline:
    """A video stream's timeline in seconds, as its container gives it."""

    start: float
    duration: float
    fps: float
    """Average frame rate (the period of a window whose ``fps`` is unset)."""


Plan = Callable[[Timeline], np.ndarray]


class Decoder(Protocol):
    def read(self, path: str | Path, plan: Plan, size: int) -> list[np.ndarray]: ...


@dataclass(frozen=True)
class DecoderInfo:
    name: str
    factory: Callable[[], Decoder]
    description: str
    plugin: str


class PyAVDecoder:
    """fvc's own reader (``reader``): seeks or decodes straight on by cost, skips frames no target needs."""

    name = DEFAULT

    def read(self, path: str | Path, plan: Plan, size: int) -> list[np.ndarray]:
        from fvc_loaders.reader import read_pictures

        return read_pictures(path, plan, size)


def _load(disabled: Iterable[str]) -> dict[str, DecoderInfo]:
    from fvc_core.contract import registered

    found_here, conflicts = registered(KIND, disabled)
    if DEFAULT in found_here:  # fvc's own reader keeps its name
        conflicts.setdefault(DEFAULT, ["loaders", found_here[DEFAULT].plugin])
    for name, plugins in conflicts.items():
        raise PluginError(f"data.decoder {name!r} is provided by plugins {' and '.join(map(repr, plugins))}; "
                          "disable one with -p no:NAME")
    found = {DEFAULT: DecoderInfo(DEFAULT, PyAVDecoder, "PyAV (FFmpeg), fvc's own reader", "loaders")}
    found.update({k: DecoderInfo(k, r.value, r.description, r.plugin) for k, r in found_here.items()})
    return found


def available_decoders(disabled: Iterable[str] = ()) -> dict[str, DecoderInfo]:
    return _load(disabled)


_BUILT: dict[str, Any] = {}


def get_decoder(name: str) -> Decoder:
    """The decoder ``name`` (built once per process), or a one-line PluginError listing the valid names."""
    if name == DEFAULT:
        return PyAVDecoder()
    if name not in _BUILT:
        from fvc_core.contract import closest

        found = _load(())
        if name not in found:
            raise PluginError(f"data.decoder: unknown decoder {name!r}{closest(name, found)}")
        _BUILT[name] = OnReferenceTimeline(found[name].factory())
    return _BUILT[name]


class OnReferenceTimeline:
    """A plugin's decoder, handed a plan that also knows fvc's reference timeline.

    ``plan()`` (no argument) gives the target times on the PyAV reader's timeline of the file (the
    container's start and duration, ``reader.timeline``; a BadVideoError naming the file when it
    cannot be opened), so every decoder picks the frames the PyAV reader picks; ``plan(timeline)``
    still plans on a timeline of the decoder's own. The decoder never imports the loaders for it.
    """

    def __init__(self, decoder: Decoder) -> None:
        self.decoder = decoder
        self.name = getattr(decoder, "name", None)

    def read(self, path: str | Path, plan: Plan, size: int) -> list[np.ndarray]:
        def on_reference(timeline: Timeline | None = None) -> np.ndarray:
            from fvc_loaders.reader import timeline as reference

            return plan(reference(path) if timeline is None else timeline)

        return self.decoder.read(path, on_reference, size)
