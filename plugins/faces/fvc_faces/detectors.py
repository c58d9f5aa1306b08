"""Which face detectors exist: every enabled ``fvc`` plugin module may define ``register_face_detectors``.

A plugin module (an entry point of the group ``fvc``) with a function

    def register_face_detectors(register):
        register("retinaface", make_detector, description="one line")

adds a detector that ``fvc prepare --faces --face-detector retinaface`` takes by name: a user brings
their own detector and weights with a ``pip install``, through the same door as the built-in one.
``make_detector()`` is called once per worker process and returns an object with

- ``name: str`` and ``version: str``: recorded in ``prepare.json`` (the version should change when the
  weights do);
- ``detect(frame) -> list of (x0, y0, x1, y1, score)``: the faces of one RGB picture
  (H, W, 3) uint8, in its pixels. RGB, not OpenCV's BGR: convert inside if the model wants BGR.
  A detector with landmarks appends the five points as ten numbers, x, y pairs in this order: the eye
  on the picture's left, the other eye, the nose tip, the mouth corner on the left, the other one
  (``--face-align`` needs them, and takes a detector with ``landmarks = True``);
- optionally ``detect_batch(frames) -> one such list per frame``: frames of one video, a batch at a
  time (a network runs them together; without it ``detect`` is called frame by frame).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from fvc_core.contract import PluginError

KIND = "face_detectors"  # what plugins register through the hook register_face_detectors

Box = tuple[float, float, float, float, float]


class FaceDetector(Protocol):
    name: str
    version: str

    def detect(self, frame: np.ndarray) -> list[Box]: ...


@dataclass(frozen=True)
class DetectorEntry:
    name: str
    factory: Callable[[], Any]
    description: str
    plugin: str


def _load(disabled: Iterable[str]) -> tuple[dict[str, DetectorEntry], dict[str, list[str]]]:
    from fvc_core.contract import registered

    found, conflicts = registered(KIND, disabled)
    return {k: DetectorEntry(k, r.value, r.description, r.plugin) for k, r in found.items()}, conflicts


def available_detectors(disabled: Iterable[str] = ()) -> dict[str, DetectorEntry]:
    found, conflicts = _load(disabled)
    return {k: v for k, v in found.items() if k not in conflicts}


def get_detector_entry(name: str, disabled: Iterable[str] = ()) -> DetectorEntry:
    """The detector ``name``, or a one-line PluginError listing the valid names (or both providers)."""
    from fvc_core.contract import closest

    found, conflicts = _load(disabled)
    if name in conflicts:
        raise PluginError(f"--face-detector {name!r} is provided by plugins "
                          f"{' and '.join(map(repr, conflicts[name]))}; disable one with -p no:NAME")
    if name not in found:
        raise PluginError(f"--face-detector {name!r}: unknown face detector{closest(name, found)}")
    return found[name]


def build_detector(name: str) -> FaceDetector:
    """A working detector, or a one-line PluginError naming the plugin whose factory failed."""
    entry = get_detector_entry(name)
    try:
        detector = entry.factory()
    except Exception as exc:
        raise PluginError(f"face detector {name!r} (plugin {entry.plugin!r}) could not be built: "
                          f"{type(exc).__name__}: {exc}") from None
    for attribute in ("name", "version", "detect"):
        if not hasattr(detector, attribute):
            raise PluginError(f"face detector {name!r} (plugin {entry.plugin!r}) has no {attribute!r}")
    return detector
