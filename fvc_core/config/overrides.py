"""``key=value`` overrides on a loaded config, and its ``${...}`` interpolation, checked before
OmegaConf runs: missing keys, cycles and interpolation bombs are one-line errors."""

from __future__ import annotations

import re
from typing import Any

import yaml

from fvc_core.config.yaml_file import (
    MAX_INTERPOLATED_CHARS,
    check_values,
    parse_yaml,
    problem_line,
    yaml_problem,
)
from fvc_core.errors import ConfigError

_OVERRIDE = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*=")
# Interpolation is kept to what a config needs: copy one value (${data.num_frames}) or read an
# environment variable (${oc.env:SCRATCH}); other resolvers (oc.decode, oc.create, ...) parse YAML
# or build containers at resolve time, beyond the checks below, so they are refused.
_REF = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+)*$")
_ENV = re.compile(r"^\s*oc\.env\s*:\s*([A-Za-z_]\w*)\s*(?:,(.*))?$", re.S)


def _parse_override(override: str, problems: list[str]) -> tuple[list[str], Any] | None:
    if not _OVERRIDE.match(override):
        problems.append(f"override {override!r}: expected dotted.key=value, e.g. trainer.epochs=3")
        return None
    key, text = override.split("=", 1)
    if not text.strip():
        problems.append(f"override {override!r}: no value after '='; write {key}=null to set it to null")
        return None
    try:
        value = parse_yaml(text)
    except yaml.YAMLError as exc:
        problems.append(f"override {override!r}: invalid YAML value: {yaml_problem(exc)[1]}")
        return None
    before = len(problems)
    check_values(value, f"override {override!r}", problems, root=key)
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
        raise ConfigError([problem_line(p) for p in problems])
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
        raise ConfigError([problem_line(p) for p in problems])
    # Copied out alias by alias (bounded: load_yaml checked the expanded size), so an override of
    # one section never changes another that shares its YAML anchor.
    data = _expand(data)
    for override, item in parsed:
        if item is not None:
            _set(data, item[0], item[1], override, problems)
    if problems:
        raise ConfigError([problem_line(p) for p in problems])
    check_values(data, "", problems)
    if not problems:
        _check_interpolations(data, problems)
    if problems:
        raise ConfigError([problem_line(p) for p in problems], source)
    if not any(isinstance(v, str) and "${" in v for v in _strings(data)):
        return data

    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(OmegaConf.create(data), resolve=True)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or ""
        msg = getattr(exc, "msg", None) or str(exc)
        raise ConfigError([problem_line(f"{key + ': ' if key else ''}{msg.splitlines()[0]}")], source) from None


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


