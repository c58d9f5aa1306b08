"""Reading experiment.yaml as plain data, safely: YAML errors with line and column, keys given twice
refused, no python tags, and bounds on its size so that an alias bomb is one line, not a stall."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from fvc_core.errors import ConfigError, UserError, one_line

# A config is a page of YAML: these bounds are far above any real one and far below what would
# stall `fvc check` (a "billion laughs" alias bomb is a few hundred bytes that safe_load returns as
# shared references, and OmegaConf would expand every one of them).
MAX_CONFIG_BYTES = 1 << 20
MAX_VALUES = 100_000
MAX_INTERPOLATED_CHARS = 1 << 20
_INT64 = (-(1 << 63), (1 << 63) - 1)


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


def problem_line(text: str, limit: int = 300) -> str:
    """A problem is printed as one line: the user's own keys and values may hold newlines."""
    text = text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ")
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_yaml(text: str) -> Any:
    """yaml.load with _Loader; raises yaml.YAMLError. Never constructs python objects."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a yaml.SafeLoader


def yaml_problem(exc: yaml.YAMLError) -> tuple[str, str]:
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


def check_values(data: Any, where: str, problems: list[str], root: str = "") -> int:
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
        data = parse_yaml(text)
    except yaml.YAMLError as exc:
        at, what = yaml_problem(exc)
        raise UserError(problem_line(f"{path}{at}: invalid YAML: {what}")) from None
    if data is None:
        raise UserError(f"{path}: the config is empty (it needs at least data: and model: sections)")
    if not isinstance(data, dict):
        raise UserError(f"{path}: the config must be a mapping of sections, got {type(data).__name__}")
    problems: list[str] = []
    check_values(data, "", problems)
    if problems:
        raise ConfigError([problem_line(p) for p in problems], str(path))
    return data


