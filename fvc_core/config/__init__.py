"""experiment.yaml, from the file to a validated ``ResolvedConfig``; one module per job:

- ``yaml_file``: read the YAML safely (bounds, duplicate keys, no tags), one line per problem;
- ``overrides``: ``key=value`` overrides and ``${...}`` interpolation, checked before OmegaConf;
- ``model``: the core's own keys and the resolved config (``ResolvedConfig``, ``Section``);
- ``validation``: validate every section against its plugin (``load_config``, ``resolve``, ``json_schema``);
- ``paths``: relative paths taken from the YAML file's folder;
- ``config_hash`` and ``identity``: a run's identity, and whether a run folder holds this experiment;
- ``run_file``: the config.yaml a finished run was trained with.

The names below are the package's public face (``from fvc_core.config import load_config``).
"""

from __future__ import annotations

from fvc_core.config.model import (
    DEFAULT_PLUGIN,
    NAME_OPTIONAL,
    PLUGIN_DISTRIBUTIONS,
    PLUGIN_SECTIONS,
    CoreConfig,
    PluginsConfig,
    ResolvedConfig,
    Section,
)
from fvc_core.config.overrides import apply_overrides, parse_override
from fvc_core.config.validation import json_schema, load_config, resolve
from fvc_core.config.yaml_file import MAX_CONFIG_BYTES, MAX_INTERPOLATED_CHARS, MAX_VALUES, load_yaml

__all__ = [
    "DEFAULT_PLUGIN", "MAX_CONFIG_BYTES", "MAX_INTERPOLATED_CHARS", "MAX_VALUES", "NAME_OPTIONAL",
    "PLUGIN_DISTRIBUTIONS", "PLUGIN_SECTIONS", "CoreConfig", "PluginsConfig", "ResolvedConfig", "Section",
    "apply_overrides", "json_schema", "load_config", "load_yaml", "parse_override", "resolve",
]
