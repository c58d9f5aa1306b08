"""``fvc sweep``: every point validated, then each run as ``fvc run`` would, then ranked on validation.

Layout: ``<output_dir>/<sweep name>/`` (an fvc-owned folder) holds one run folder per point,
``<point id>/``, the trackers' files (mlflow.db, results.duckdb) and the ranking (sweep.parquet,
sweep.json). A point is an ordinary run: resumable fold by fold, its config hash that of the same
values given to ``fvc run`` (the ``sweep:`` section and the output folder are not part of it).
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from rich.console import Console

from fvc_core import ownership
from fvc_core.config import ResolvedConfig, apply_overrides, load_yaml, resolve
from fvc_core.console import console_of_thread, get_console, labelled_console
from fvc_core.errors import ConfigError, Terminated, UserError, one_line
from fvc_core.executors import shareable
from fvc_core.sweep_spec import (
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

    from fvc_core.config_paths import from_command_line

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
    from fvc_core.sweep_ranking import selection_of

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


def _existing(folder: Path) -> dict[str, tuple[str, dict[str, Any]]]:
    """Config hash -> (point folder, its run.json), of the runs already in the sweep's folder."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    if not folder.is_dir():
        return found
    for state_path in sorted(folder.glob("*/run.json")):
        try:
            state = json.loads(state_path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(state, dict) and isinstance(state.get("config_hash"), str):
            found.setdefault(state["config_hash"], (state_path.parent.name, state))
    return found


def _keep_folders(folder: Path, points: list[tuple[Point, ResolvedConfig]]) -> None:
    """A point whose config a folder already holds keeps that folder, even if its id would read
    differently now (a key that varies since values were added): its finished folds are kept.
    So does one whose folder an older fvc made, before keys now at their defaults existed."""
    from fvc_core.config_identity import match_run, stored_config

    existing = _existing(folder)
    ids = {p.id for p, _ in points}
    stored = {name: stored_config(folder / name) or {} for name, _ in existing.values()} if existing else {}
    for point, config in points:
        held = existing[config.hash()][0] if config.hash() in existing else None
        if held is None and (folder / point.id / "run.json").exists():
            continue  # its own folder: _check_folders says whether that holds this config
        held = held or next((name for name, state in existing.values()
                             if match_run(folder / name, state, config, stored[name]).same), None)
        if held and held != point.id and held not in ids:
            ids.discard(point.id)
            point.id = held
            ids.add(held)


def _check_folders(folder: Path, points: list[tuple[Point, ResolvedConfig]], fresh: bool) -> None:
    """Before anything runs: the sweep folder is fvc's, and no point's folder holds another config."""
    from fvc_core.config_identity import match_run

    way_out = "choose another sweep name (--name) or output_dir"
    ownership.check_claimable(folder, SWEEP, way_out=way_out)
    problems = []
    for point, config in points:
        run_dir = folder / point.id
        try:
            ownership.check_claimable(run_dir, ownership.RUN, way_out=way_out)
        except UserError as exc:
            problems.append(f"point {point.id}: {exc}")
            continue
        if fresh or not (run_dir / "run.json").exists():
            continue
        try:
            state = json.loads((run_dir / "run.json").read_text())
        except (OSError, ValueError):
            problems.append(f"point {point.id}: {run_dir / 'run.json'}: unreadable run state; use --fresh")
            continue
        from fvc_core.runner import trained_anything

        trained = trained_anything(run_dir)
        match = match_run(run_dir, state, config) if isinstance(state, dict) else None
        if (match is None or not match.same) and trained:
            problems.append(f"point {point.id}: {run_dir} holds a run of another config (hash "
                            f"{state.get('config_hash') if isinstance(state, dict) else None}, this point "
                            f"{config.hash()}{match.why if match else ''}); pass --fresh to train it again, or "
                            "choose another sweep name")
    if problems:
        raise UserError("\n".join(problems[:MAX_PROBLEM_LINES]))


def run_sweep(config_path: str, arguments: list[str], *, disabled: list[str], yes: bool = False,
              name: str | None = None, fresh: bool = False, console: Console | None = None,
              at_once: int | None = None) -> int:
    """Run every point not finished yet, then print and write the ranking; 1 if a point failed.

    ``at_once``: points open at once on a shareable executor (default: enough to keep its slots busy)."""
    from fvc_core.sweep_ranking import rank, selection_of, table, write

    console = console or get_console()
    sweep_name, folder, points = plan(config_path, arguments, disabled=disabled, yes=yes, name=name)
    ownership.check_output_dir(folder.parent, "output_dir")
    _keep_folders(folder, points)
    _check_folders(folder, points, fresh)
    ownership.claim(folder, SWEEP, way_out="choose another sweep name (--name) or output_dir")

    selection = selection_of(points[0][1])
    keys = list(dict.fromkeys(k for p, _ in points for k in p.varied if k != "seed"))
    wall = {} if fresh else _previous_wall(folder)  # --fresh trains every point again: its time starts at 0
    meta = {"sweep": sweep_name, "config": str(config_path), "arguments": list(arguments),
            "selection_metric": selection.metric if selection else None,
            "selection_mode": selection.mode if selection else None,
            "points": {p.id: {"values": p.values, "config_hash": c.hash()} for p, c in points}, "wall_s": wall}
    recording = threading.Lock()  # points side by side finish in their own threads

    def entries() -> list[dict[str, Any]]:
        return [{"id": p.id, "varied": p.varied, "run_dir": folder / p.id, "config_hash": c.hash(),
                 "folds": int(getattr(c.trainer.config, "folds", 1)) * int(getattr(c.trainer.config, "repeats", 1)),
                 "k": int(getattr(c.trainer.config, "folds", 1)), "wall_s": wall.get(p.id, 0.0)} for p, c in points]

    def record(point_id: str | None = None, seconds: float = 0.0) -> list[dict[str, Any]]:
        with recording:
            if point_id is not None:
                wall[point_id] = wall.get(point_id, 0.0) + seconds
            rows = rank(sweep_name, entries(), selection)
            write(rows, folder, meta)
            return rows

    console.print(f"sweep {sweep_name}: {len(points)} points in {folder}, ranked by validation "
                  f"{selection.metric if selection else '(none)'}", highlight=False)
    todo = [(p, c) for p, c in points if fresh or not _finished(folder / p.id, c)]
    for point, _ in points:
        if all(point is not p for p, _ in todo):
            console.print(f"point {point.id}: finished earlier, kept", highlight=False)
    for i, (point, config) in enumerate(todo):
        config.output_dir = folder
        config.run_name = point.id
        config.sweep = {"name": sweep_name, "point": point.id, "values": point.varied,
                        "metric": selection.metric if selection else None,
                        "mode": selection.mode if selection else None, "index": i, "points": len(points)}
    executor = _shared_executor(todo) if todo else None
    try:
        if executor is not None and shareable(executor) and len(todo) > 1 and at_once != 1:
            failed = _side_by_side(todo, executor, fresh, console, record, at_once)
        else:
            failed = _one_after_another(todo, executor, fresh, console, record)
    finally:
        if executor is not None:
            executor.close()
    rows = record()
    console.print(table(sweep_name, rows, keys, selection, folder))
    console.print(f"ranking: {folder / 'sweep.parquet'} (and sweep.json)", highlight=False)
    if failed:
        console.print(f"[red]{len(failed)} point(s) failed:[/] {', '.join(failed)}; run the same command "
                      "again to retry them (finished points are kept)")
        return 1
    return 0


Todo = list[tuple[Point, ResolvedConfig]]
Record = Callable[[str, float], Any]


def _one_after_another(todo: Todo, executor: Any, fresh: bool, console: Console, record: Record) -> list[str]:
    """The points in order, each to its end; the ids of those that failed."""
    failed: list[str] = []
    for i, (point, config) in enumerate(todo):
        console.rule(f"point {i + 1}/{len(todo)}: {point.id}")
        started = time.monotonic()
        try:
            # A user's mistake raised here stops the sweep, its one line said by the command (the rule
            # above names the point).
            if not _run_point(point, config, fresh, console, executor):
                failed.append(point.id)
        finally:
            record(point.id, time.monotonic() - started)
    return failed


def _run_point(point: Point, config: ResolvedConfig, fresh: bool, console: Console, executor: Any) -> bool:
    """Run one point; False (its failure said on ``console``) when it crashed or its own values
    failed it. Ctrl-C and a user's mistake (a missing file, a full disk), which would stop every
    point, are raised."""
    from fvc_core.runner import run_experiment

    try:
        run_experiment(config, fresh=fresh, console=console, executor=executor)
    except UserError as exc:
        if not of_this_point(exc):
            raise
        console.print(f"[red]point {point.id} failed:[/] {one_line(exc, with_type=False)}", highlight=False)
        return False
    except Exception as exc:  # a point that crashes is recorded; the others still run
        console.print(f"[red]point {point.id} failed:[/] {one_line(exc)}", highlight=False)
        return False
    return True


def of_this_point(exc: BaseException) -> bool:
    """A UserError that this point's values caused and the other points need not share: its loss
    diverged (an lr sweep often holds a value too large). Recorded as the point's failure."""
    from fvc_core.training.loop import NonFiniteLossError

    return isinstance(exc, NonFiniteLossError)


def points_at_once(capacity: int, folds_per_point: int, n_points: int) -> int:
    """Enough points open to keep every slot busy, plus one whose folds are ready when a point ends;
    not more: an open point holds its trackers and shows as running in MLflow while it waits."""
    return max(1, min(n_points, math.ceil(capacity / max(1, folds_per_point)) + 1))


def _side_by_side(todo: Todo, executor: Any, fresh: bool, console: Console, record: Record,
                  at_once: int | None) -> list[str]:
    """The points in threads sharing one executor, whose slots (``max_concurrent``) bound the folds of
    all of them together: the cluster takes the next point's folds while a point's last fold ends.
    Each point's lines start with its id. A user's mistake or Ctrl-C stops every point (each
    resumes from its checkpoints on the next run); a point that crashes is recorded, the others go on."""
    folds = max(int(getattr(c.trainer.config, "folds", 1)) * int(getattr(c.trainer.config, "repeats", 1))
                for _, c in todo)
    capacity = executor.capacity()
    width = min(at_once, len(todo)) if at_once else points_at_once(capacity, folds, len(todo))
    console.print(f"points side by side: up to {width} at once, their folds sharing {capacity} slots",
                  highlight=False)
    failed: list[str] = []
    stop: list[BaseException] = []  # the first error that stops the whole sweep

    def one(i: int, point: Point, config: ResolvedConfig) -> None:
        if stop:
            return
        with console_of_thread(labelled_console(f"[{point.id}] ")) as own:
            own.print(f"point {i + 1}/{len(todo)} starts", highlight=False)
            started = time.monotonic()
            try:
                if not _run_point(point, config, fresh, own, executor):
                    failed.append(point.id)
            except (KeyboardInterrupt, UserError) as exc:
                if not stop and not isinstance(exc, Terminated):
                    stop.append(exc)
                    executor.cancel()
                if not isinstance(exc, Terminated):
                    own.print(f"[red]stopped:[/] {one_line(exc, with_type=False)}", highlight=False)
            finally:
                record(point.id, time.monotonic() - started)
                own.file.flush()

    pool = ThreadPoolExecutor(max_workers=width, thread_name_prefix="fvc-point")
    futures = [pool.submit(one, i, point, config) for i, (point, config) in enumerate(todo)]
    try:
        while not all(f.done() for f in futures):
            wait(futures, timeout=0.5)  # short waits: Ctrl-C and SIGTERM reach this thread between them
    except BaseException:
        executor.cancel()
        for f in futures:
            f.cancel()
        pool.shutdown(wait=True)
        raise
    pool.shutdown(wait=True)
    for f in futures:
        f.result()  # an error of the thread machinery itself, not a point's
    if stop:
        raise stop[0]
    return [p.id for p, _ in todo if p.id in failed]


def _finished(run_dir: Path, config: ResolvedConfig) -> bool:
    """The point's run ended with every fold, for this very config: nothing to run again."""
    try:
        state = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return False
    from fvc_core.config_identity import match_run

    return isinstance(state, dict) and state.get("status") == "finished" and match_run(run_dir, state, config).same


def _previous_wall(folder: Path) -> dict[str, float]:
    """Seconds each point has run in earlier invocations (sweep.json), so a resumed sweep adds to them."""
    try:
        data = json.loads((folder / "sweep.json").read_text())
        return {str(k): float(v) for k, v in (data.get("wall_s") or {}).items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}


def _shared_executor(points: list[tuple[Point, ResolvedConfig]]) -> Any:
    """One executor for every point when they all use the same one (a Ray cluster is joined once);
    None: each point builds its own."""
    sections = {json.dumps(c.executor.as_dict(), sort_keys=True) for _, c in points}
    if len(sections) != 1:
        return None
    from fvc_core.plugins import get_registry

    config = points[0][1]
    registry = get_registry(config.disabled_plugins)
    executor = registry.get("executors", config.executor.name).factory(config.executor.config)
    executor.start()
    return executor
