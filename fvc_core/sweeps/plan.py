"""A sweep's points, each with its validated config, before anything is written: ``fvc sweep`` and
``fvc sweep --dry-run`` both start here."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from fvc_core.config import ResolvedConfig, apply_overrides, load_yaml, resolve
from fvc_core.errors import ConfigError, UserError
from fvc_core.sweeps.spec import (
    CONFIRM_ABOVE,
    Point,
    check_name,
    count,
    expand,
    is_valid_name,
    make_points,
    section_of,
    split_arguments,
)

SWEEP = "sweep"
MAX_PROBLEM_LINES = 20


def plan(config_path: str, arguments: list[str], *, disabled: list[str], yes: bool = False,
         name: str | None = None) -> tuple[str, Path, list[tuple[Point, ResolvedConfig]]]:
    """(sweep name, its folder, each point with its validated config); UserError, nothing written, if any is bad."""
    source = str(config_path)
    base = load_yaml(config_path)
    section = section_of(base, source)
    plain, cli_grid = split_arguments(arguments)
    # A key given on the command line, list or single value, replaces the section's list of it.
    fixed = {word.partition("=")[0] for word in plain}
    grid = {**{k: v for k, v in section.grid.items() if k not in fixed}, **cli_grid}
    if not grid and section.random is None:
        raise UserError(f"{source}: nothing to sweep: give key=v1,v2 on the command line or a sweep: section "
                        "with grid or random (docs/sweeps.md)")
    total = count(grid, section)
    if total > CONFIRM_ABOVE and not yes:
        raise UserError(f"the sweep has {total:,} points, more than {CONFIRM_ABOVE:,}: pass --yes to run them all")
    points = make_points(expand(grid, section))

    from fvc_core.config.paths import from_command_line

    # Relative paths as `fvc run` takes them: from the YAML file's folder, those typed on the
    # command line (plain or swept) from the working directory.
    file_dir = Path(config_path).absolute().parent
    cli_keys = from_command_line(plain) | set(cli_grid)
    configs: dict[str, ResolvedConfig] = {}
    problems: dict[str, list[str]] = {}
    for point in points:
        try:
            data = apply_overrides(base, plain, source, settings=list(point.values.items()))
            configs[point.id] = resolve(data, disabled=disabled, source=source, file_dir=file_dir,
                                        cli_keys=cli_keys)
        except ConfigError as exc:
            problems[point.id] = exc.problems
    if problems:
        raise UserError("\n".join(_problem_lines(problems, len(points), source)))
    for point in points:
        _as_resolved(point, configs[point.id])

    # Two points of one config would train the same run twice and be ranked as two seeds of it (an
    # interval over copies); a value given twice, a key of the sweep: section itself, or random choices
    # that repeat a point.
    same: dict[str, list[str]] = {}
    for point in points:
        same.setdefault(configs[point.id].hash(), []).append(point.id)
    repeated = [ids for ids in same.values() if len(ids) > 1]
    if repeated:
        raise UserError("\n".join(
            f"{source}: points {', '.join(ids)} are one config (hash {configs[ids[0]].hash()}): a value given "
            "twice, or a key that does not change the run; give each value once"
            for ids in repeated[:MAX_PROBLEM_LINES]))

    first = configs[points[0].id]
    if len({str(c.output_dir) for c in configs.values()}) > 1:
        raise UserError(f"{source}: output_dir differs between points; a sweep's points live in one folder")
    from fvc_core.sweeps.ranking import selection_of

    chosen = {(s.metric, s.mode) if (s := selection_of(c)) else None for c in configs.values()}
    if len(chosen) > 1:
        raise UserError(f"{source}: the points choose epochs on different validation metrics "
                        f"({', '.join(sorted(str(c[0]) if c else 'none' for c in chosen))}); one sweep is "
                        "ranked on one: keep trainer.early_stopping.metric the same")
    if not (name or section.name) and not is_valid_name(first.experiment):
        # The experiment's name may hold spaces (fvc run does not mind); the folder's may not.
        raise UserError(f"{source}: the sweep's folder is named after the experiment, {first.experiment!r}, which "
                        "holds characters other than letters, digits, '.', '_' and '-': give --name (or sweep.name)")
    sweep_name = check_name(name or section.name or first.experiment, source)
    folder = Path(first.output_dir) / sweep_name
    return sweep_name, folder, [(p, configs[p.id]) for p in points]


def _as_resolved(point: Point, config: ResolvedConfig) -> None:
    """The point's values as the run uses them: YAML reads ``1e-3`` as the string '1e-3' and the config
    model makes it 0.001, so sweep.parquet's column would hold text (sorted as text) and a point typed
    ``1e-3`` would not group with one typed ``0.001``. The id keeps what was typed."""
    resolved = config.as_dict()
    for key in point.values:
        node: Any = resolved
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            point.values[key] = node
            if key in point.varied:
                point.varied[key] = node


def _problem_lines(problems: dict[str, list[str]], n_points: int, source: str) -> list[str]:
    """A problem every point has (an unknown key) once; one of some points with their ids."""
    seen = Counter(line for lines in problems.values() for line in set(lines))
    lines = [f"{source}: {line}" for line, n in seen.items() if n == n_points]
    for point_id, point_lines in problems.items():
        for line in point_lines:
            if seen[line] != n_points:
                lines.append(f"{source}: point {point_id}: {line}")
    if len(lines) > MAX_PROBLEM_LINES:
        lines = [*lines[:MAX_PROBLEM_LINES], f"... and {len(lines) - MAX_PROBLEM_LINES} more problems"]
    return lines
