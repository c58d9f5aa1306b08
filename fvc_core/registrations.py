"""Named things a plugin kind of its own collects from every enabled ``fvc`` plugin module.

A plugin distribution may define a kind the core knows nothing about (dataset layouts, frame
decoders, face detectors): each ``fvc`` entry-point module that defines ``<hook>(register)`` adds
entries by name through it. pluggy accepts such a hook implementation without a core hookspec;
this walks the plugins the core loaded (``-p no:NAME`` honoured, failed imports left to
``fvc plugins`` to report), so a new entry arrives with a ``pip install`` and nothing is edited.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fvc_core.errors import PluginError


@dataclass(frozen=True)
class Registered:
    """One entry: its name, what was registered (a reader, a factory...), a description, its plugin."""

    name: str
    value: Any
    description: str
    plugin: str


def collect(hook: str, disabled: Iterable[str] = ()) -> tuple[dict[str, Registered], dict[str, list[str]]]:
    """Every entry registered through ``hook``, and the names two plugins both claim (name -> plugins).

    A hook that raises is one PluginError naming its plugin; a claimed name keeps its first entry
    and is listed in the conflicts, for the caller to refuse or leave out.
    """
    from fvc_core.plugins import get_registry

    found: dict[str, Registered] = {}
    conflicts: dict[str, list[str]] = {}
    for info in get_registry(disabled).plugins:
        if info.error is not None:
            continue
        try:
            module = importlib.import_module(info.module.split(":")[0])
        except Exception:  # the core loader imported it already; `fvc plugins` reports a failure
            continue
        implementation = getattr(module, hook, None)
        if not callable(implementation):
            continue

        def register(name: str, value: Any, description: str = "", _plugin: str = info.name) -> None:
            if name in found and found[name].plugin != _plugin:
                conflicts.setdefault(name, [found[name].plugin]).append(_plugin)
                return
            found[name] = Registered(name, value, description, _plugin)

        try:
            implementation(register=register)
        except Exception as exc:
            raise PluginError(f"plugin {info.name!r}: {hook} failed ({type(exc).__name__}: {exc})") from None
    return found, conflicts


def registered(kind: str, disabled: Iterable[str] = ()) -> tuple[dict[str, Registered], dict[str, list[str]]]:
    """What every enabled plugin registered under ``kind`` (``layouts``, ``decoders``, ``face_detectors``...),
    by name, and the names two plugins both claim (name -> plugins), for the caller to refuse."""
    return collect(f"register_{kind}", disabled)
