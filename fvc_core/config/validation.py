"""experiment.yaml: load, apply ``key=value`` overrides, validate against the core and each plugin.

One section per plugin kind; ``name`` picks the plugin and the keys beside it are
validated by that plugin's own pydantic model. A tracker's settings sit in a
top-level section named after it. Every problem is reported at once, one line
each, with its key path and the closest valid names.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from fvc_core.config.model import (
    DEFAULT_PLUGIN,
    NAME_OPTIONAL,
    PLUGIN_DISTRIBUTIONS,
    PLUGIN_SECTIONS,
    CoreConfig,
    ResolvedConfig,
    Section,
)
from fvc_core.config.overrides import apply_overrides
from fvc_core.config.yaml_file import load_yaml, problem_line
from fvc_core.errors import ConfigError, PluginError
from fvc_core.plugins import KIND_NOUN, Registry, bool_problems, closest, get_registry, validation_problems


def load_config(
    path: str | Path,
    overrides: list[str] = (),  # type: ignore[assignment]
    *,
    disabled: list[str] = (),  # type: ignore[assignment]
    registry: Registry | None = None,
) -> ResolvedConfig:
    """Read, override and validate an experiment config; ConfigError lists every problem.

    Relative paths are taken from the YAML file's folder, those of overrides from the working
    directory (``fvc_core.config.paths``)."""
    from fvc_core.config.paths import from_command_line

    data = apply_overrides(load_yaml(path), list(overrides), source=str(path))
    return resolve(data, registry=registry, disabled=disabled, source=str(path),
                   file_dir=Path(path).absolute().parent, cli_keys=from_command_line(overrides))


def resolve(
    data: dict[str, Any],
    *,
    registry: Registry | None = None,
    disabled: list[str] = (),  # type: ignore[assignment]
    source: str | None = None,
    file_dir: Path | None = None,
    cli_keys: set[str] = frozenset(),  # type: ignore[assignment]
) -> ResolvedConfig:
    """Validate config data. With ``file_dir`` (the YAML file's folder), every ``Path`` key is made
    absolute: from ``file_dir``, or from the working directory for the ``cli_keys`` overrides set."""
    plugin_section = data.get("plugins") or {}
    from_config = plugin_section.get("disable", []) if isinstance(plugin_section, dict) else []
    from_config = [n for n in from_config if isinstance(n, str)] if isinstance(from_config, list) else []
    disabled_all = sorted(set(disabled) | set(from_config))
    registry = registry or get_registry(disabled_all)
    problems: list[str] = []
    for i, off in enumerate(from_config):
        if why := registry.not_installed(off):
            problems.append(f"plugins.disable[{i}]: {why}")

    tracker_names = set(registry.names("trackers"))
    core_keys = set(CoreConfig.model_fields)
    core_data = {k: v for k, v in data.items() if k in core_keys}
    for key in data:
        if key not in core_keys and key not in tracker_names:
            problems.append(f"{key}: unknown key{closest(str(key), core_keys | tracker_names)}")
    core: CoreConfig | None = None
    failed: set[str] = set()
    problems += bool_problems(CoreConfig, core_data)
    try:
        core = CoreConfig.model_validate(core_data)
    except ValidationError as exc:
        problems += validation_problems(exc, "", CoreConfig)
        # Every problem at once: the plugin sections are validated even when a core key is wrong.
        failed = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}

    if core is not None and core.sweep is not None:
        # Checked by `fvc check` and `fvc run` too: a typo in it should not wait for `fvc sweep`.
        from fvc_core.sweeps.spec import section_of

        try:
            section_of({"sweep": core.sweep}, "")
        except ConfigError as exc:
            problems += exc.problems

    sections: dict[str, Section] = {}
    # A section that failed, validated again without the keys refused: still compared with the model's
    # needs below, so a model problem and a clip mismatch are listed together.
    partial: dict[str, tuple[Section, list[str]]] = {}
    for key, kind in PLUGIN_SECTIONS.items():
        if key in failed:
            continue
        default = {"name": DEFAULT_PLUGIN[key]} if key in DEFAULT_PLUGIN else {}
        section = getattr(core, key) if core else data.get(key, default)
        if not isinstance(section, dict):
            continue  # reported by CoreConfig's validation above
        name = section.get("name", DEFAULT_PLUGIN[key] if key in NAME_OPTIONAL else None)
        if not isinstance(name, str):
            problems.append(f"{key}.name: required, the {KIND_NOUN[kind]} plugin to use"
                            f"{closest('', registry.names(kind))}")
            # Without a plugin no other key can be checked, but a misspelt name (nmae:) is the likely cause.
            problems += [f"{key}.{k}: unknown key (did you mean 'name'?)" for k in section
                         if isinstance(k, str) and k != "name" and difflib.get_close_matches(k, ["name"], 1, 0.75)]
            continue
        if not registry.names(kind) and registry.disabled and not any(p.error for p in registry.plugins):
            # Every plugin of this kind left out (`-p no:supervised`): said without importing the
            # disabled ones to find which one it was, so a left-out trainer is never loaded.
            problems.append(f"{key}.name: no {KIND_NOUN[kind]} is registered (plugins left out by -p no:NAME or "
                            f"plugins.disable: {', '.join(registry.disabled)})")
            continue
        try:
            sections[key] = Section(name, registry.validate(kind, name, section, where=key))
        except PluginError as exc:
            text = str(exc).replace(f"{key}: ", f"{key}.name: ", 1)
            install = PLUGIN_DISTRIBUTIONS.get((kind, name))
            if install and name not in registry.names(kind) and registry.disabled_provider(kind, name) is None:
                text += f"; it comes with the plugin {install}"
            problems.append(text)
        except ConfigError as exc:
            problems += exc.problems
            if key in ("data", "model") and (found := registry.validate_without_invalid(kind, name, section)):
                partial[key] = (Section(name, found[0]), [f"{key}.{k}" for k in found[1]])

    if {"data", "model"} <= set(sections) | set(partial):
        from fvc_core.model_input import input_problems

        data_section, data_unset = partial.get("data") or (sections["data"], [])
        model_section, model_unset = partial.get("model") or (sections["model"], [])
        unset = data_unset + model_unset
        # Compared with a refused key at its default, a mismatch may change once the key is fixed: said.
        note = ""
        if unset:
            note = (f" (with {unset[0]} at its default: as given it is invalid)" if len(unset) == 1 else
                    f" (with {', '.join(unset)} at their defaults: as given they are invalid)")
        problems += [line + note for line in
                     input_problems(data_section.config, model_section.config, model_section.name)]

    tracker_list = core.trackers if core else ([] if "trackers" in failed else data.get("trackers", ["console"]))
    trackers = []
    for i, name in enumerate(tracker_list):
        try:
            tconf = registry.validate("trackers", name, data.get(name) or {}, where=name)
            trackers.append(Section(name, tconf))
        except PluginError as exc:
            problems.append(str(exc).replace(f"{name}: ", f"trackers[{i}]: ", 1))
        except ConfigError as exc:
            problems += exc.problems
    if len(set(tracker_list)) != len(tracker_list):
        problems.append("trackers: a tracker is listed twice")
    if problems or core is None:
        raise ConfigError([problem_line(p) for p in problems], source)
    if file_dir is not None:
        from fvc_core.config.paths import rebase_paths

        core = rebase_paths(core, file_dir, cli_keys)  # type: ignore[assignment]
        for key, section in sections.items():
            section.config = rebase_paths(section.config, file_dir, cli_keys, key)
        for t in trackers:
            t.config = rebase_paths(t.config, file_dir, cli_keys, t.name)
    return ResolvedConfig(
        experiment=core.experiment,
        seed=core.seed,
        output_dir=core.output_dir,
        data=sections["data"],
        model=sections["model"],
        trainer=sections["trainer"],
        executor=sections["executor"],
        trackers=trackers,
        disabled_plugins=disabled_all,
        source=source,
    )


def json_schema(registry: Registry | None = None) -> dict[str, Any]:
    """A JSON Schema of experiment.yaml with every installed plugin's section, for editors."""
    registry = registry or get_registry()
    schema = CoreConfig.model_json_schema()
    defs = schema.setdefault("$defs", {})
    props = schema["properties"]

    def variant(kind: str, name: str) -> dict[str, Any]:
        reg = registry.get(kind, name)
        sub = reg.config.model_json_schema(ref_template="#/$defs/{model}")
        defs.update(sub.pop("$defs", {}))
        sub.setdefault("properties", {})["name"] = {"const": name, "description": reg.description}
        sub["required"] = ["name", *sub.get("required", [])]
        sub["title"] = f"{KIND_NOUN[kind]} {name}"
        return sub

    for key, kind in PLUGIN_SECTIONS.items():
        props[key] = {"oneOf": [variant(kind, n) for n in registry.names(kind)]}
        if key in NAME_OPTIONAL:
            # Without a name the section is the default plugin's: only that variant may omit it.
            for sub in props[key]["oneOf"]:
                if sub["properties"]["name"]["const"] == DEFAULT_PLUGIN[key]:
                    sub["required"].remove("name")
    props["trackers"] = {"type": "array", "items": {"enum": registry.names("trackers")}}
    for name in registry.names("trackers"):
        tracker = variant("trackers", name)
        tracker["properties"].pop("name")
        tracker["required"].remove("name")
        props[name] = tracker
    schema["title"] = "fvc experiment"
    return schema
