"""experiment.yaml: load, apply ``key=value`` overrides, validate against the core and each plugin.

One section per plugin kind; ``name`` picks the plugin and the keys beside it are
validated by that plugin's own pydantic model. A tracker's settings sit in a
top-level section named after it. Every problem is reported at once, one line
each, with its key path and the closest valid names.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fvc_core.errors import ConfigError, PluginError, UserError
from fvc_core.plugins import KIND_NOUN, Registry, closest, get_registry, validation_problems

PLUGIN_SECTIONS = {"data": "datasets", "model": "models", "trainer": "trainers"}
_OVERRIDE = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*=")


class PluginsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disable: list[str] = Field(default_factory=list, description="Installed plugins to leave out, by name.")


class CoreConfig(BaseModel):
    """The core's own keys; the plugin sections are validated by their plugins."""

    model_config = ConfigDict(extra="forbid")
    experiment: str = "experiment"
    seed: int = 42
    output_dir: Path = Path("runs")
    data: dict[str, Any]
    model: dict[str, Any]
    trainer: dict[str, Any] = Field(default_factory=lambda: {"name": "supervised"})
    trackers: list[str] = Field(default_factory=lambda: ["console"])
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)


@dataclass
class Section:
    name: str
    config: BaseModel

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.config.model_dump(mode="json")}


@dataclass
class ResolvedConfig:
    experiment: str
    seed: int
    output_dir: Path
    data: Section
    model: Section
    trainer: Section
    trackers: list[Section]
    disabled_plugins: list[str] = field(default_factory=list)
    source: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """Every key with its default filled in: what config.yaml of a run holds."""
        out: dict[str, Any] = {
            "experiment": self.experiment,
            "seed": self.seed,
            "output_dir": str(self.output_dir),
            "data": self.data.as_dict(),
            "model": self.model.as_dict(),
            "trainer": self.trainer.as_dict(),
            "trackers": [t.name for t in self.trackers],
        }
        for t in self.trackers:
            out[t.name] = t.config.model_dump(mode="json")
        if self.disabled_plugins:
            out["plugins"] = {"disable": list(self.disabled_plugins)}
        return out

    def hash(self) -> str:
        """Identity of what is measured: seed, data, model, trainer (not trackers or output folder)."""
        ident = {k: v for k, v in self.as_dict().items() if k in ("seed", "data", "model", "trainer")}
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.as_dict(), sort_keys=False)


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read config ({exc.__class__.__name__})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise UserError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: the config must be a mapping of sections, got {type(data).__name__}")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` overrides (values parsed as YAML) and ``${...}`` interpolation."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    bad = [o for o in overrides if not _OVERRIDE.match(o)]
    if bad:
        raise ConfigError([f"override {o!r}: expected dotted.key=value, e.g. trainer.epochs=3" for o in bad])
    try:
        merged = OmegaConf.merge(OmegaConf.create(data), OmegaConf.from_dotlist(list(overrides)))
        return OmegaConf.to_container(merged, resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        raise ConfigError([str(exc).splitlines()[0]]) from None


def load_config(
    path: str | Path,
    overrides: list[str] = (),  # type: ignore[assignment]
    *,
    disabled: list[str] = (),  # type: ignore[assignment]
    registry: Registry | None = None,
) -> ResolvedConfig:
    """Read, override and validate an experiment config; ConfigError lists every problem."""
    data = apply_overrides(load_yaml(path), list(overrides))
    return resolve(data, registry=registry, disabled=disabled, source=str(path))


def resolve(
    data: dict[str, Any],
    *,
    registry: Registry | None = None,
    disabled: list[str] = (),  # type: ignore[assignment]
    source: str | None = None,
) -> ResolvedConfig:
    plugin_section = data.get("plugins") or {}
    from_config = plugin_section.get("disable", []) if isinstance(plugin_section, dict) else []
    disabled_all = sorted(set(disabled) | set(from_config if isinstance(from_config, list) else []))
    registry = registry or get_registry(disabled_all)
    problems: list[str] = []

    tracker_names = set(registry.names("trackers"))
    core_keys = set(CoreConfig.model_fields)
    core_data = {k: v for k, v in data.items() if k in core_keys}
    for key in data:
        if key not in core_keys and key not in tracker_names:
            problems.append(f"{key}: unknown key{closest(str(key), core_keys | tracker_names)}")
    try:
        core = CoreConfig.model_validate(core_data)
    except ValidationError as exc:
        problems += validation_problems(exc, "", CoreConfig)
        raise ConfigError(problems, source) from None

    sections: dict[str, Section] = {}
    for key, kind in PLUGIN_SECTIONS.items():
        section = getattr(core, key)
        name = section.get("name")
        if not isinstance(name, str):
            problems.append(f"{key}.name: required, the {KIND_NOUN[kind]} plugin to use"
                            f"{closest('', registry.names(kind))}")
            continue
        try:
            sections[key] = Section(name, registry.validate(kind, name, section, where=key))
        except PluginError as exc:
            problems.append(str(exc).replace(f"{key}: ", f"{key}.name: ", 1))
        except ConfigError as exc:
            problems += exc.problems

    trackers = []
    for i, name in enumerate(core.trackers):
        try:
            tconf = registry.validate("trackers", name, data.get(name) or {}, where=name)
            trackers.append(Section(name, tconf))
        except PluginError as exc:
            problems.append(str(exc).replace(f"{name}: ", f"trackers[{i}]: ", 1))
        except ConfigError as exc:
            problems += exc.problems
    if len(set(core.trackers)) != len(core.trackers):
        problems.append("trackers: a tracker is listed twice")
    if problems:
        raise ConfigError(problems, source)
    return ResolvedConfig(
        experiment=core.experiment,
        seed=core.seed,
        output_dir=core.output_dir,
        data=sections["data"],
        model=sections["model"],
        trainer=sections["trainer"],
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
    props["trackers"] = {"type": "array", "items": {"enum": registry.names("trackers")}}
    for name in registry.names("trackers"):
        tracker = variant("trackers", name)
        tracker["properties"].pop("name")
        tracker["required"].remove("name")
        props[name] = tracker
    schema["title"] = "fvc experiment"
    return schema
