"""What a sweep varies: the points of ``fvc sweep CONFIG k=v1,v2 ...`` and of a ``sweep:`` section.

A point is a mapping of dotted keys to values, applied on top of the config like overrides. Its
id (the run folder's name) is made of the keys that vary across the sweep and their values, so
``lr=0.001_chunk_size=4`` says what the folder holds. Light: no torch, no polars.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fvc_core.errors import ConfigError, UserError

# Above this many points a sweep asks for --yes: a typo'd list (a thousand values) should not start
# a month of training.
CONFIRM_ABOVE = 10_000
MAX_ID_CHARS = 120
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")


class RandomSweep(BaseModel):
    """``random:`` of a sweep section: ``points`` draws of every key in ``keys``, under ``seed``."""

    model_config = ConfigDict(extra="forbid")
    points: int = Field(ge=1, description="How many random points to draw.")
    seed: int = Field(0, ge=0, description="Seed of the draws: the same seed draws the same points.")
    keys: dict[str, dict[str, Any]] = Field(description="dotted.key: {uniform: [low, high]}, {loguniform: "
                                            "[low, high]}, {int: [low, high]} or {choice: [a, b, ...]}")

    @field_validator("keys")
    @classmethod
    def _distributions(cls, keys: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        if not keys:
            raise ValueError("no keys to draw")
        for key, spec in keys.items():
            if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
                raise ValueError(f"{key}: give one of {{uniform: [low, high]}}, {{loguniform: [low, high]}}, "
                                 "{int: [low, high]}, {choice: [a, b, ...]}")
            kind, args = next(iter(spec.items()))
            if not isinstance(args, list) or not args:
                raise ValueError(f"{key}: {kind} needs a non-empty list")
            if kind == "choice":
                continue
            if len(args) != 2 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
                raise ValueError(f"{key}: {kind} needs [low, high], two numbers")
            low, high = args
            if low > high:
                raise ValueError(f"{key}: {kind} low {low} is above high {high}")
            if kind == "loguniform" and low <= 0:
                raise ValueError(f"{key}: loguniform needs low > 0")
            if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
                raise ValueError(f"{key}: int needs whole numbers")
        return keys


class SweepSection(BaseModel):
    """The ``sweep:`` section of experiment.yaml."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, description="The sweep's folder in output_dir; default: the experiment name.")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="dotted.key: [values]; every "
                                       "combination is a point.")
    random: RandomSweep | None = None


@dataclass
class Point:
    id: str
    values: dict[str, Any]
    """Every swept key of this point (dotted key -> value)."""
    varied: dict[str, Any] = field(default_factory=dict)
    """The swept keys whose value differs between points: what the id and the table show."""


def split_list(text: str) -> list[str]:
    """``1e-3,5e-4`` -> ['1e-3', '5e-4']: commas split, except inside brackets, braces or quotes,
    so ``[1,2],[3,4]`` is two lists and ``'a,b'`` one string."""
    items, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth = max(0, depth - 1)
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return items


def split_arguments(arguments: list[str]) -> tuple[list[str], dict[str, list[Any]]]:
    """Command-line ``key=value`` words: (plain overrides for every point, grid of the comma lists)."""
    from fvc_core.config.overrides import parse_override

    plain: list[str] = []
    grid: dict[str, list[Any]] = {}
    for word in arguments:
        key, _, text = word.partition("=")
        items = split_list(text) if "=" in word else [text]
        if len(items) == 1:
            plain.append(word)
            continue
        if any(not item.strip() for item in items):
            raise UserError(f"sweep {word!r}: an empty value in the comma list (quote a value that holds a "
                            "comma: key='a,b')")
        if key in grid:
            raise UserError(f"sweep {word!r}: {key} is swept twice; give all its values in one list")
        grid[key] = [parse_override(f"{key}={item}")[1] for item in items]
    # key=v1,v2 and key=v beside it: the single value would be dropped without a word.
    for word in plain:
        key = word.partition("=")[0]
        if key in grid:
            raise UserError(f"sweep {word!r}: {key} is also swept ({key}=...,...); give it once, as a list or "
                            "one value")
    return plain, grid


def section_of(data: dict[str, Any], source: str) -> SweepSection:
    raw = data.get("sweep")
    if raw is None:
        return SweepSection()
    if not isinstance(raw, dict):
        raise ConfigError([f"sweep: a mapping with name, grid, random; got {type(raw).__name__}"], source)
    from fvc_core.plugins import bool_problems

    booleans = bool_problems(SweepSection, raw, "sweep")  # random.points=true is not 1 point
    try:
        section = SweepSection.model_validate(raw)
    except ValidationError as exc:
        problems = list(booleans)
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            problems.append(f"sweep.{where}: {err['msg'].removeprefix('Value error, ')}")
        raise ConfigError(problems, source) from None
    if booleans:
        raise ConfigError(booleans, source)
    for key, values in section.grid.items():
        if not values:
            raise ConfigError([f"sweep.grid.{key}: an empty list; give at least one value"], source)
    return section


def draw(random_sweep: RandomSweep) -> list[dict[str, Any]]:
    """The random points, drawn one after another (keys in sorted order): more points keep the first ones."""
    rng = random.Random(random_sweep.seed)
    out = []
    for _ in range(random_sweep.points):
        point = {}
        for key in sorted(random_sweep.keys):
            kind, args = next(iter(random_sweep.keys[key].items()))
            if kind == "choice":
                point[key] = args[rng.randrange(len(args))]
            elif kind == "int":
                point[key] = rng.randint(int(args[0]), int(args[1]))
            elif kind == "uniform":
                point[key] = rng.uniform(float(args[0]), float(args[1]))
            else:
                point[key] = math.exp(rng.uniform(math.log(args[0]), math.log(args[1])))
        out.append(point)
    return out


def count(grid: dict[str, list[Any]], section: SweepSection) -> int:
    size = math.prod(len(v) for v in grid.values()) if grid else 1
    return size * (section.random.points if section.random else 1)


def expand(grid: dict[str, list[Any]], section: SweepSection) -> list[dict[str, Any]]:
    """Every combination of the grid, crossed with the random draws when there are any."""
    keys = list(grid)
    combos = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]
    if section.random is None:
        return combos
    return [{**combo, **drawn} for combo in combos for drawn in draw(section.random)]


def _shown(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        text = {True: "true", False: "false", None: "null"}[value]  # as the YAML reads
    elif isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, tuple)):
        text = "-".join(_shown(v) for v in value)
    elif isinstance(value, dict):
        text = "-".join(f"{k}-{_shown(v)}" for k, v in value.items())
    else:
        text = str(value)
    text = _UNSAFE.sub("-", text)
    # A number keeps its sign (lr=-1 is not lr=1); elsewhere a dash at either end is left from a bracket.
    return (text if isinstance(value, (int, float)) and not isinstance(value, bool) else text.strip("-")) or "x"


def short_names(keys: list[str]) -> dict[str, str]:
    """The last part of each dotted key (lr for trainer.lr), the whole key where two would share it."""
    # model.name=tiny_cnn reads as model=tiny_cnn
    last = [k[:-5].rsplit(".", 1)[-1] if k.endswith(".name") else k.rsplit(".", 1)[-1] for k in keys]
    return {k: (s if last.count(s) == 1 else k) for k, s in zip(keys, last, strict=True)}


def make_points(combos: list[dict[str, Any]]) -> list[Point]:
    """Points with readable, unique ids (fvc_core.sweeps.run renames a point to the folder that already
    holds its config, so growing a sweep never trains a point twice)."""
    keys = list(dict.fromkeys(k for combo in combos for k in combo))
    varied = [k for k in keys if len({repr(c.get(k)) for c in combos}) > 1]
    names = short_names(varied)
    points: list[Point] = []
    seen: dict[str, int] = {}
    for combo in combos:
        parts = [f"{names[k]}={_shown(combo[k])}" for k in varied if k in combo]
        base = "_".join(parts) or "point"
        if len(base) > MAX_ID_CHARS:
            import hashlib

            digest = hashlib.sha256(repr(sorted(combo.items())).encode()).hexdigest()[:8]
            base = f"{base[:MAX_ID_CHARS - 9]}~{digest}"
        n = seen.get(base, 0) + 1
        seen[base] = n
        # Values that read the same once shortened (two random draws, 0.00012345 and 0.00012346) stay apart.
        point_id = base if n == 1 else f"{base}~{n}"
        points.append(Point(point_id, dict(combo), {k: combo[k] for k in varied if k in combo}))
    return points


def is_valid_name(name: str) -> bool:
    return bool(_NAME.match(name))


def check_name(name: str, where: str) -> str:
    if not _NAME.match(name):
        raise UserError(f"{where}: sweep name {name!r}: letters, digits, '.', '_' and '-' only (it names a "
                        "folder in output_dir)")
    return name
