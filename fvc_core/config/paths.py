"""Relative paths in a config: taken from the folder of the YAML file that names them.

Every key typed ``pathlib.Path`` in the core's or a plugin's config model (``output_dir``,
``data.metadata``, ``data.root``, ``duckdb.path``...) is made absolute when the config is loaded, so a
config means the same files from whatever folder ``fvc`` is started in. Defaults count as written in
the file. A path given by a ``key=value`` override on the command line is taken from the working
directory, as any path typed in a shell is.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel


def from_command_line(overrides: Iterable[str]) -> set[str]:
    """The dotted keys the overrides set (``data.metadata=x`` -> ``data.metadata``)."""
    return {o.split("=", 1)[0] for o in overrides if "=" in o}


def _given_on_command_line(key: str, cli_keys: set[str]) -> bool:
    # An override of a whole section (data={...}) sets every key under it.
    parts = key.split(".")
    return any(".".join(parts[:i]) in cli_keys for i in range(1, len(parts) + 1))


def absolute(path: Path, base: Path) -> Path:
    """``path`` from ``base`` (with ``~`` expanded), normalised without resolving symlinks."""
    path = path.expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


def _rebased(value: Any, key: str, file_dir: Path, cli_keys: set[str]) -> Any:
    if isinstance(value, BaseModel):
        return rebase_paths(value, file_dir, cli_keys, key)
    if isinstance(value, Path):
        return absolute(value, Path.cwd() if _given_on_command_line(key, cli_keys) else file_dir)
    if isinstance(value, list) and any(isinstance(v, (Path, BaseModel)) for v in value):
        return [_rebased(v, key, file_dir, cli_keys) for v in value]
    return value


def rebase_paths(model: BaseModel, file_dir: Path, cli_keys: set[str], prefix: str = "") -> BaseModel:
    """A copy of ``model`` with every ``Path`` value absolute (see the module docstring)."""
    updates = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        new = _rebased(value, f"{prefix}.{name}" if prefix else name, file_dir, cli_keys)
        if new is not value:
            updates[name] = new
    return model.model_copy(update=updates) if updates else model
