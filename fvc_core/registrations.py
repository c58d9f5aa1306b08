"""What every enabled plugin registered under a kind, for the plugin that uses that kind.

Layouts, decoders and face detectors are kinds like datasets or models: declared hooks
(``register_<kind>(register)`` in ``fvc_core/hookspecs.py``, or a plugin's own through
``fvc_addhooks``), collected once by the registry (``fvc_core.plugins``: ``-p no:NAME`` honoured,
failed plugins left to ``fvc plugins`` to report). This module hands one kind to the plugin that
reads it (``fvc_core.contract.registered``), with the names two plugins both claim.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Registered:
    """One entry: its name, what was registered (a reader, a factory...), a description, its plugin."""

    name: str
    value: Any
    description: str
    plugin: str


def registered(kind: str, disabled: Iterable[str] = ()) -> tuple[dict[str, Registered], dict[str, list[str]]]:
    """What every enabled plugin registered under ``kind`` (``layouts``, ``decoders``, ``face_detectors``...),
    by name, and the names two plugins both claim (name -> plugins), for the caller to refuse or leave out."""
    from fvc_core.plugins import get_registry

    registry = get_registry(disabled)
    found = {name: Registered(name, reg.factory, reg.description, reg.plugin.name)
             for name, reg in registry.registrations(kind).items()}
    conflicts = {name: [reg.plugin.name for reg in regs]
                 for (of, name), regs in registry.conflicts.items() if of == kind}
    return found, conflicts
