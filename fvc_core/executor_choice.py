"""The executor a command other than ``fvc run`` uses (``fvc prepare --executor ray``, ``--config exp.yaml``).

Chosen the way a run chooses it, with the same one-line errors: the ``executor:`` section of an
experiment file (the YAML read, interpolated and checked as ``fvc run`` reads it), a name and keys given
on the command line over it, validated by the executor plugin's own config model. Only that section is
read: a command that is not a run has no use for the others (the experiment's ``data.metadata`` may well
be the table this command is about to write).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fvc_core.config.model import DEFAULT_PLUGIN, PLUGIN_DISTRIBUTIONS
from fvc_core.config.overrides import apply_overrides
from fvc_core.config.yaml_file import load_yaml
from fvc_core.errors import ConfigError, PluginError, UserError
from fvc_core.plugins import get_registry


def executor_from(config_file: str | Path | None = None, name: str | None = None,
                  keys: Mapping[str, tuple[str, Any]] | None = None, *, disabled: list[str] = ()) -> Any:
    """The executor plugin's object (not started) for ``config_file``'s ``executor:`` section, with
    ``name`` (typed as ``--executor NAME``) and ``keys`` (``{key: (option typed, value)}``, such as
    ``{"address": ("--address", "10.0.0.5:6379")}``) over it; ``local`` when nothing names one.

    One line per problem, naming the file and key or the option: ``exp.yaml: executor.num_cpu: unknown
    key (did you mean 'num_cpus'?)``, ``--executor: unknown executor 'rya' (did you mean 'ray'?)``."""
    registry = get_registry(list(disabled))
    source = str(config_file) if config_file is not None else None
    section: dict[str, Any] = {}
    if config_file is not None:
        found = apply_overrides(load_yaml(config_file), [], source=source).get("executor", {})
        if not isinstance(found, dict):
            raise ConfigError([f"executor: expected a mapping with a name (name: ray), got "
                               f"{type(found).__name__}"], source)
        section = dict(found)
    where = "executor.name"
    if name is not None:
        if name != section.get("name", DEFAULT_PLUGIN["executor"]):
            section = {}  # the file's keys are another executor's
        section["name"], where, source = name, "--executor", None
    chosen = section.get("name", DEFAULT_PLUGIN["executor"])
    if not isinstance(chosen, str):
        raise ConfigError([f"{where}: expected the name of an executor plugin, got {chosen!r}"], source)
    try:
        model = registry.get("executors", chosen, where=where).config
    except PluginError as exc:
        install = PLUGIN_DISTRIBUTIONS.get(("executors", chosen))
        text = str(exc)
        if install and registry.disabled_provider("executors", chosen) is None:
            text += f"; it comes with the plugin {install}"
        raise ConfigError([text], source) from None
    for key, (option, value) in (keys or {}).items():
        if value is None:
            continue
        if model is None or key not in model.model_fields:
            raise UserError(f"{option}: the executor {chosen!r} takes no {key}")
        section[key] = value
    try:
        config = registry.validate("executors", chosen, section, where="executor")
    except ConfigError as exc:
        raise ConfigError(exc.problems, str(config_file) if config_file is not None else None) from None
    return registry.get("executors", chosen).factory(config)
