"""Whether a run folder holds the experiment a config describes, across fvc versions.

A run's identity is ``ResolvedConfig.hash()``: seed, data, model and trainer, every key with its
default filled in. A version of fvc (or of a plugin) that adds a key with a default gives every
config another hash, so comparing hashes alone would refuse to resume every run folder an older
version made. Here an older folder is the same experiment when its stored config.yaml (checked
against its run.json's hash) equals the new config except for keys it lacks entirely whose value
in the new config is that key's default: the older version ran them as the default does. Hashing
only non-default values instead would let a changed default make two experiments share a hash.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from fvc_core.config.config_hash import IDENTITY_KEYS, identity_hash

if TYPE_CHECKING:
    from fvc_core.config.model import ResolvedConfig

__all__ = ["IDENTITY_KEYS", "Comparison", "Defaults", "Match", "compare", "earlier_hashes", "identity_hash",
           "match_run", "stored_config"]

SECTION_KINDS = {"data": "datasets", "model": "models", "trainer": "trainers"}
_NO_DEFAULT = object()

LEGACY: dict[str, Any] = {"trainer.early_stopping.min_epochs": 1}
"""Keys added with a default that behaves otherwise than the versions before them, and the value those
versions ran as: a folder whose config.yaml lacks such a key is that value's experiment, not the
default's (min_epochs' default, half the epochs, would change which epoch the remaining folds keep)."""


@dataclass(frozen=True)
class Comparison:
    """An older config against a newer one: ``filled`` are the keys the older lacks whose newer value
    is their default, ``differs`` every other difference (the experiments differ when it is not empty)."""

    filled: tuple[str, ...] = ()
    differs: tuple[str, ...] = ()

    @property
    def same(self) -> bool:
        return not self.differs


class Defaults:
    """The default of a dotted config key, from the pydantic models that validate each section."""

    def __init__(self, sections: Mapping[str, type[BaseModel] | None]):
        from fvc_core.config.model import CoreConfig

        self._models: dict[str, type[BaseModel] | None] = {"": CoreConfig, **sections}

    @classmethod
    def of(cls, config: ResolvedConfig) -> Defaults:
        return cls({key: type(getattr(config, key).config) for key in SECTION_KINDS})

    @classmethod
    def from_registry(cls, config: Mapping[str, Any]) -> Defaults:
        """For a config read back as plain data (config.yaml): each section's plugin as installed now;
        a plugin that is not installed knows no defaults."""
        from fvc_core.errors import UserError
        from fvc_core.plugins import get_registry

        registry = get_registry()
        models: dict[str, type[BaseModel] | None] = {}
        for key, kind in SECTION_KINDS.items():
            section = config.get(key)
            name = section.get("name") if isinstance(section, Mapping) else None
            try:
                models[key] = registry.get(kind, name).config if isinstance(name, str) else None
            except UserError:
                models[key] = None
        return cls(models)

    def default(self, path: tuple[str, ...]) -> Any:
        """The key's default as config.yaml writes values, or ``_NO_DEFAULT`` when none is known
        (a required key, a section's plugin name, a plugin's extra key, no such key)."""
        from pydantic_core import to_jsonable_python

        if path[0] in SECTION_KINDS:
            model, parts = self._models.get(path[0]), path[1:]
        else:
            model, parts = self._models[""], path
        for i, part in enumerate(parts):
            field = model.model_fields.get(part) if model is not None else None
            if field is None:
                return _NO_DEFAULT
            if i < len(parts) - 1:
                model = _model_of(field.annotation)
                continue
            if field.is_required():
                return _NO_DEFAULT
            return to_jsonable_python(field.get_default(call_default_factory=True))
        return _NO_DEFAULT


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model a nested section holds (``EarlyStoppingConfig`` or ``... | None``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        found = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        return found[0] if len(found) == 1 else None
    return None


def compare(older: Mapping[str, Any], newer: Mapping[str, Any], defaults: Defaults) -> Comparison:
    """The identity sections of two configs (as config.yaml holds them), key by key."""
    filled: list[str] = []
    differs: list[str] = []

    def walk(a: Any, b: Any, path: tuple[str, ...]) -> None:
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            for key in sorted(set(a) | set(b), key=str):
                here = (*path, str(key))
                if key not in b:
                    differs.append(".".join(here))  # a key this version no longer has
                elif key not in a:
                    default = _as_older_ran(defaults.default(here), here)
                    if default is not _NO_DEFAULT and _canon(default) == _canon(b[key]):
                        filled.append(".".join(here))
                    else:
                        differs.append(".".join(here))
                else:
                    walk(a[key], b[key], here)
        elif _canon(a) != _canon(b):
            differs.append(".".join(path))

    walk({k: older[k] for k in IDENTITY_KEYS if k in older}, {k: newer[k] for k in IDENTITY_KEYS if k in newer}, ())
    return Comparison(tuple(filled), tuple(differs))


def _as_older_ran(default: Any, path: tuple[str, ...]) -> Any:
    """A key's default as a version without it ran: ``LEGACY`` values put in, at the key itself or
    inside the section it defaults to."""
    import copy

    here = ".".join(path)
    if here in LEGACY:
        return LEGACY[here]
    if not isinstance(default, Mapping):
        return default
    default = copy.deepcopy(dict(default))
    for key, value in LEGACY.items():
        parts = key.split(".")
        if tuple(parts[:len(path)]) != path:
            continue
        node = default
        for part in parts[len(path):-1]:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node[parts[-1]] = value
    return default


def _canon(value: Any) -> Any:
    """A value as compared: 2 equals 2.0 (a float field's default may be written as an int), True
    never equals 1."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return (type(value).__name__, value)
    if isinstance(value, (int, float)):
        return ("number", value)
    if isinstance(value, Mapping):
        return {str(k): _canon(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canon(v) for v in value]
    return ("other", repr(value))


@dataclass(frozen=True)
class Match:
    """How a run folder's run relates to a config: the same hash, the same experiment made by an
    older fvc (``filled``: the keys that version did not have, at their defaults now), or not."""

    same: bool
    filled: tuple[str, ...] = ()
    why: str = ""
    """When not the same and more is known than the hash: ``; it differs in a.b`` for the refusal's line."""

    def note(self) -> str:
        """The line a resumed older run prints."""
        keys = ", ".join(self.filled[:3]) + (f" and {len(self.filled) - 3} more" if len(self.filled) > 3 else "")
        return f"resuming a run made before {keys} existed (at {'its' if len(self.filled) == 1 else 'their'} " \
               "default now): same experiment"


SAME_HASH = Match(True)


def match_run(run_dir: Path, state: Mapping[str, Any], config: ResolvedConfig,
              stored: Mapping[str, Any] | None = None) -> Match:
    """Whether the run in ``run_dir`` (its run.json as ``state``) is ``config``'s experiment.

    The same hash is the fast path. Otherwise the folder's config.yaml must be the config its
    run.json's hash was made from (not edited since) and differ from ``config`` only by keys it
    lacks whose value in ``config`` is their default. ``stored``: that config.yaml, already read."""
    recorded = state.get("config_hash")
    if recorded == config.hash():
        return SAME_HASH
    stored = stored if stored is not None else stored_config(Path(run_dir))
    if stored is None or not isinstance(recorded, str) or identity_hash(stored) != recorded:
        return Match(False)
    found = compare(stored, config.as_dict(), Defaults.of(config))
    if found.differs:
        more = f" and {len(found.differs) - 5} more" if len(found.differs) > 5 else ""
        older = [f"{key}={LEGACY[key]}" for key in found.differs if key in LEGACY and not _has(stored, key)]
        hint = f" (the fvc that made it ran as {', '.join(older)}: add that to resume it)" if older else ""
        return Match(False, why=f"; it differs in {', '.join(found.differs[:5])}{more}{hint}")
    # Equal values and yet another hash (2 written as 2.0): not a key added with its default, so
    # not taken for the same experiment.
    return Match(bool(found.filled), found.filled)


def _has(config: Mapping[str, Any], dotted: str) -> bool:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return True


def stored_config(run_dir: Path) -> dict[str, Any] | None:
    """The run folder's config.yaml, or None when it cannot be read."""
    import yaml

    try:
        data = yaml.safe_load((run_dir / "config.yaml").read_text())
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def earlier_hashes(state: Mapping[str, Any], match: Match) -> tuple[str, ...]:
    """The hashes a resumed run's checkpoints may carry: what its run.json recorded, when that was
    the same experiment under an older fvc, and the ones that run had accepted in turn."""
    kept = state.get("earlier_config_hashes")
    out = [h for h in kept if isinstance(h, str)] if isinstance(kept, list) else []
    recorded = state.get("config_hash")
    if match.filled and isinstance(recorded, str) and recorded not in out:
        out.append(recorded)
    return tuple(out)
