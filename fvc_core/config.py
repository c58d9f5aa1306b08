"""experiment.yaml: load, apply ``key=value`` overrides, validate against the core and each plugin.

One section per plugin kind; ``name`` picks the plugin and the keys beside it are
validated by that plugin's own pydantic model. A tracker's settings sit in a
top-level section named after it. Every problem is reported at once, one line
each, with its key path and the closest valid names.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fvc_core.config_identity import identity_hash
from fvc_core.errors import ConfigError, PluginError, UserError, one_line
from fvc_core.plugins import KIND_NOUN, Registry, bool_problems, closest, get_registry, validation_problems

PLUGIN_SECTIONS = {"data": "datasets", "model": "models", "trainer": "trainers", "executor": "executors"}
# A section's plugin when the config does not name one.
DEFAULT_PLUGIN = {"trainer": "supervised", "executor": "local"}
# Sections whose keys may be given without a name (executor.max_retries=1 means the default executor's).
NAME_OPTIONAL = {"executor"}
# Plugins that live in a distribution of their own: an unknown name says what to install.
PLUGIN_DISTRIBUTIONS = {("executors", "ray"): "fvc-ray (pip install -e plugins/ray_executor)"}
_OVERRIDE = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*=")


class PluginsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disable: list[str] = Field(default_factory=list, description="Installed plugins to leave out, by name.")


class CoreConfig(BaseModel):
    """The core's own keys; the plugin sections are validated by their plugins."""

    model_config = ConfigDict(extra="forbid")
    experiment: str = "experiment"
    seed: int = Field(42, ge=0)
    output_dir: Path = Path("runs")
    data: dict[str, Any]
    model: dict[str, Any]
    trainer: dict[str, Any] = Field(default_factory=lambda: {"name": "supervised"})
    executor: dict[str, Any] = Field(default_factory=lambda: {"name": "local"},
                                     description="Where the folds run: name picks the executor plugin.")
    trackers: list[str] = Field(default_factory=lambda: ["console"])
    plugins: PluginsConfig = Field(default_factory=PluginsConfig)
    sweep: dict[str, Any] | None = Field(None, description="What `fvc sweep` varies (docs/sweeps.md); "
                                         "`fvc run` runs the config without it. Not part of the config hash.")


@dataclass
class Section:
    name: str
    config: BaseModel

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.config.model_dump(mode="json")}


def _local_executor() -> Section:
    from fvc_core.builtin.local_executor import LocalExecutorConfig

    return Section("local", LocalExecutorConfig())


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
    executor: Section = field(default_factory=_local_executor)
    """How the folds are executed; not part of the hash: where a fold runs never changes its numbers."""
    run_name: str | None = None
    """The run folder's name in output_dir: a sweep's point id; None: the model's name."""
    sweep: dict[str, Any] | None = None
    """The sweep point this run is (``RunInfo.sweep``); None for a plain `fvc run`. Not in the hash."""

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / (self.run_name or self.model.name)

    def as_dict(self) -> dict[str, Any]:
        """Every key with its default filled in: what config.yaml of a run holds."""
        out: dict[str, Any] = {
            "experiment": self.experiment,
            "seed": self.seed,
            "output_dir": str(self.output_dir),
            "data": self.data.as_dict(),
            "model": self.model.as_dict(),
            "trainer": self.trainer.as_dict(),
            "executor": self.executor.as_dict(),
            "trackers": [t.name for t in self.trackers],
        }
        for t in self.trackers:
            out[t.name] = t.config.model_dump(mode="json")
        if self.disabled_plugins:
            out["plugins"] = {"disable": list(self.disabled_plugins)}
        return out

    def hash(self) -> str:
        """Identity of what is measured: seed, data, model, trainer (not trackers or output folder)."""
        return identity_hash(self.as_dict())

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.as_dict(), sort_keys=False)


# A config is a page of YAML: these bounds are far above any real one and far below what would
# stall `fvc check` (a "billion laughs" alias bomb is a few hundred bytes that safe_load returns as
# shared references, and OmegaConf would expand every one of them).
MAX_CONFIG_BYTES = 1 << 20
MAX_VALUES = 100_000
MAX_INTERPOLATED_CHARS = 1 << 20
_INT64 = (-(1 << 63), (1 << 63) - 1)
# Interpolation is kept to what a config needs: copy one value (${data.num_frames}) or read an
# environment variable (${oc.env:SCRATCH}); other resolvers (oc.decode, oc.create, ...) parse YAML
# or build containers at resolve time, beyond the checks below, so they are refused.
_REF = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*$")
_ENV = re.compile(r"^\s*oc\.env\s*:\s*([A-Za-z_]\w*)\s*(?:,(.*))?$", re.S)


class _Loader(yaml.SafeLoader):
    """yaml.SafeLoader (no python/* tags) that also refuses a key given twice, which plain YAML
    resolves silently in favour of the last one."""

    # 2024-01-31 stays text, as OmegaConf reads it: no config key holds a date.
    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[tuple[str, str], int] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = (key_node.tag, key_node.value)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key_node.value!r} (first given on line {seen[key]})",
                    key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def _one_line(text: str, limit: int = 300) -> str:
    """A problem is printed as one line: the user's own keys and values may hold newlines."""
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _parse_yaml(text: str) -> Any:
    """yaml.load with _Loader; raises yaml.YAMLError. Never constructs python objects."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a yaml.SafeLoader


def _yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
    """(where, what) of a YAML error, as ``:line:col`` and one line of text."""
    if isinstance(exc, yaml.reader.ReaderError):
        char = exc.character if isinstance(exc.character, int) else ord(exc.character or "\0")
        return "", f"character #x{char:04x} at offset {exc.position}: {exc.reason}"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "invalid"
        tag = re.search(r"constructor for the tag '([^']*)'", what)
        if tag:
            shown = tag.group(1).replace("tag:yaml.org,2002:", "!!")
            what = f"the tag {shown} is not allowed (fvc reads plain YAML: mappings, lists, text, numbers)"
        return where, what
    return "", one_line(exc, with_type=False)


def _read_config_text(path: Path) -> str:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UserError(f"{path}: config file not found") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read config ({exc.strerror or type(exc).__name__})") from None
    import stat

    if stat.S_ISDIR(st.st_mode):
        raise UserError(f"{path}: is a folder; give the experiment YAML file")
    if not stat.S_ISREG(st.st_mode):
        # a FIFO or /dev/zero would block or never end
        raise UserError(f"{path}: not a regular file; give the experiment YAML file")
    if st.st_size > MAX_CONFIG_BYTES:
        raise UserError(f"{path}: {st.st_size} bytes, more than the {MAX_CONFIG_BYTES} a config may have")
    try:
        raw = path.read_bytes()
    except PermissionError:
        raise UserError(f"{path}: cannot read config (permission denied)") from None
    except OSError as exc:
        raise UserError(f"{path}: cannot read config ({exc.strerror or type(exc).__name__})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
                        "a config is a YAML text file") from None


def _check_values(data: Any, where: str, problems: list[str], root: str = "") -> int:
    """Walk parsed YAML once per distinct node; report what no config key can hold (keys that are
    not text, dates, sets, NaN/inf, integers beyond 64 bits, a list or mapping that holds itself)
    and return how many values the data expands to once YAML aliases are copied out."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def walk(node: Any, path: str) -> int:
        if isinstance(node, (dict, list)):
            if id(node) in active:
                problems.append(f"{path or '(top)'}: a YAML alias that contains itself")
                return 1
            if id(node) in sizes:
                return sizes[id(node)]
            active.add(id(node))
            total = 1
            if isinstance(node, dict):
                for key, value in node.items():
                    if not isinstance(key, str):
                        problems.append(f"{path + '.' if path else ''}{key!r}: a key must be text, got "
                                        f"{type(key).__name__} (quote it)")
                        key = str(key)
                    total += walk(value, f"{path}.{key}" if path else key)
            else:
                for i, value in enumerate(node):
                    total += walk(value, f"{path}[{i}]")
            active.discard(id(node))
            sizes[id(node)] = total
            return total
        name = path or "(top)"
        if isinstance(node, bool) or node is None or isinstance(node, str):
            pass
        elif isinstance(node, int):
            if not _INT64[0] <= node <= _INT64[1]:
                digits = str(node)
                shown = digits if len(digits) <= 24 else f"{digits[:20]}... ({len(digits)} digits)"
                problems.append(f"{name}: the integer {shown} does not fit in 64 bits")
        elif isinstance(node, float):
            if node != node or node in (float("inf"), float("-inf")):
                problems.append(f"{name}: {node} is not a usable value (give a finite number)")
        else:
            problems.append(f"{name}: a YAML {type(node).__name__} ({str(node)[:40]}) is not a supported "
                            "value (quote it to use it as text)")
        return 1

    total = walk(data, root)
    if total > MAX_VALUES:
        problems.append(f"YAML aliases expand to {total:,} values, more than the {MAX_VALUES:,} a config may "
                        f"hold (an alias bomb?){' in ' + where if where else ''}")
    return total


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    text = _read_config_text(path)
    try:
        data = _parse_yaml(text)
    except yaml.YAMLError as exc:
        at, what = _yaml_problem(exc)
        raise UserError(_one_line(f"{path}{at}: invalid YAML: {what}")) from None
    if data is None:
        raise UserError(f"{path}: the config is empty (it needs at least data: and model: sections)")
    if not isinstance(data, dict):
        raise UserError(f"{path}: the config must be a mapping of sections, got {type(data).__name__}")
    problems: list[str] = []
    _check_values(data, "", problems)
    if problems:
        raise ConfigError([_one_line(p) for p in problems], str(path))
    return data


def _parse_override(override: str, problems: list[str]) -> tuple[list[str], Any] | None:
    if not _OVERRIDE.match(override):
        problems.append(f"override {override!r}: expected dotted.key=value, e.g. trainer.epochs=3")
        return None
    key, text = override.split("=", 1)
    if not text.strip():
        problems.append(f"override {override!r}: no value after '='; write {key}=null to set it to null")
        return None
    try:
        value = _parse_yaml(text)
    except yaml.YAMLError as exc:
        problems.append(f"override {override!r}: invalid YAML value: {_yaml_problem(exc)[1]}")
        return None
    before = len(problems)
    _check_values(value, f"override {override!r}", problems, root=key)
    for i in range(before, len(problems)):
        if not problems[i].startswith("YAML aliases"):
            problems[i] = f"override {override!r}: {problems[i]}"
    return (key.split("."), value) if len(problems) == before else None


def _set(data: dict[str, Any], parts: list[str], value: Any, override: str, problems: list[str]) -> None:
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            kind = "a list; give the whole list" if isinstance(child, list) else f"a {type(child).__name__}"
            problems.append(f"override {override!r}: {'.'.join(parts[: i + 1])} is {kind}, not a section")
            return
        node = child
    last = parts[-1]
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        _merge(node[last], value)
    else:
        node[last] = value


def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    # OmegaConf.merge semantics: mappings merge key by key, anything else replaces.
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _interpolations(text: str) -> list[str] | str:
    """The bodies of the ``${...}`` in a string, or a one-line reason it is refused."""
    bodies = []
    i = 0
    while (i := text.find("${", i)) != -1:
        slashes = len(text[:i]) - len(text[:i].rstrip("\\"))
        if slashes % 2:  # \${ is a literal ${
            i += 2
            continue
        end = text.find("}", i + 2)
        if end == -1:
            return "an unclosed ${"
        body = text[i + 2: end]
        if "${" in body or "{" in body:
            return "nested interpolation is not supported"
        bodies.append(body)
        i = end + 1
    return bodies


def _check_interpolations(data: dict[str, Any], problems: list[str]) -> None:
    """Refuse interpolations beyond ${key.path} and ${oc.env:VAR[,default]}, missing keys, cycles and
    copies of whole sections, and bound what resolving would produce, before OmegaConf runs."""
    import os

    leaves: dict[str, str] = {}

    def collect(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                collect(v, f"{path}.{k}" if path else str(k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                collect(v, f"{path}.{i}")
        elif isinstance(node, str) and "${" in node:
            leaves[path] = node

    def lookup(ref: str) -> tuple[bool, Any]:
        node: Any = data
        for part in ref.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return False, None
        return True, node

    collect(data, "")
    shown = {p: re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", p) for p in leaves}
    length: dict[str, int] = {}
    bad: set[str] = set()

    def expand(path: str, stack: list[str]) -> int:
        if path in length:
            return length[path]
        if path in stack:
            cycle = " -> ".join(shown[p] for p in stack[stack.index(path):] + [path])
            problems.append(f"{shown[path]}: interpolation cycle {cycle}")
            bad.update(stack[stack.index(path):])
            return 0
        bodies = _interpolations(leaves[path])
        if isinstance(bodies, str):
            problems.append(f"{shown[path]}: {bodies} in {leaves[path]!r}")
            bad.add(path)
            return 0
        total = len(leaves[path])
        for body in bodies:
            env = _ENV.match(body)
            if env:
                if env.group(1) not in os.environ and env.group(2) is None:
                    problems.append(f"{shown[path]}: ${{{body}}}: the environment variable {env.group(1)} is "
                                    "not set (give a default: ${oc.env:NAME,default})")
                    bad.add(path)
                total += len(os.environ.get(env.group(1), env.group(2) or ""))
                continue
            ref = body.strip()
            if not _REF.match(ref):
                problems.append(f"{shown[path]}: ${{{body}}} is not supported; use ${{key.path}} or "
                                "${oc.env:VARIABLE}")
                bad.add(path)
                continue
            found, target = lookup(ref)
            if not found:
                problems.append(f"{shown[path]}: ${{{ref}}} names no key of the config")
                bad.add(path)
            elif isinstance(target, (dict, list)):
                problems.append(f"{shown[path]}: ${{{ref}}} is a whole section or list; an interpolation "
                                "copies a single value")
                bad.add(path)
            elif ref in leaves:
                if ref not in bad:
                    total += expand(ref, [*stack, path])
            else:
                total += len(str(target))
            if total > MAX_INTERPOLATED_CHARS:
                break
        length[path] = total
        return total

    for path in leaves:
        if path not in bad:
            expand(path, [])
    grown = sum(length.values())
    if grown > MAX_INTERPOLATED_CHARS:
        problems.append(f"interpolations expand to more than {MAX_INTERPOLATED_CHARS:,} characters "
                        "(an interpolation bomb?)")


def parse_override(override: str) -> tuple[list[str], Any]:
    """``dotted.key=value`` as (key parts, value parsed as YAML); ConfigError in one line if malformed."""
    problems: list[str] = []
    item = _parse_override(override, problems)
    if problems or item is None:
        raise ConfigError([_one_line(p) for p in problems])
    return item


def apply_overrides(data: dict[str, Any], overrides: list[str], source: str | None = None,
                    settings: list[tuple[str, Any]] = ()) -> dict[str, Any]:  # type: ignore[assignment]
    """Apply ``dotted.key=value`` overrides (values parsed as YAML, as safely as the file), then
    ``settings`` (dotted key, value already parsed: a sweep point's), and ``${...}`` interpolation;
    ConfigError lists every problem, one line each."""
    problems: list[str] = []
    parsed = [(o, _parse_override(o, problems)) for o in overrides]
    parsed += [(f"{key}=...", (key.split("."), value)) for key, value in settings]
    if problems:
        raise ConfigError([_one_line(p) for p in problems])
    # Copied out alias by alias (bounded: load_yaml checked the expanded size), so an override of
    # one section never changes another that shares its YAML anchor.
    data = _expand(data)
    for override, item in parsed:
        if item is not None:
            _set(data, item[0], item[1], override, problems)
    if problems:
        raise ConfigError([_one_line(p) for p in problems])
    _check_values(data, "", problems)
    if not problems:
        _check_interpolations(data, problems)
    if problems:
        raise ConfigError([_one_line(p) for p in problems], source)
    if not any(isinstance(v, str) and "${" in v for v in _strings(data)):
        return data

    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(OmegaConf.create(data), resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or ""
        msg = getattr(exc, "msg", None) or str(exc)
        raise ConfigError([_one_line(f"{key + ': ' if key else ''}{msg.splitlines()[0]}")], source) from None


def _expand(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _expand(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand(v) for v in node]
    return node


def _strings(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [s for v in node.values() for s in _strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in _strings(v)]
    return [node] if isinstance(node, str) else []


def load_config(
    path: str | Path,
    overrides: list[str] = (),  # type: ignore[assignment]
    *,
    disabled: list[str] = (),  # type: ignore[assignment]
    registry: Registry | None = None,
) -> ResolvedConfig:
    """Read, override and validate an experiment config; ConfigError lists every problem.

    Relative paths are taken from the YAML file's folder, those of overrides from the working
    directory (``fvc_core.config_paths``)."""
    from fvc_core.config_paths import from_command_line

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
        from fvc_core.sweep_spec import section_of

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
        raise ConfigError([_one_line(p) for p in problems], source)
    if file_dir is not None:
        from fvc_core.config_paths import rebase_paths

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
