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
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from rich.console import Console

from fvc_core import ownership
from fvc_core.config import ResolvedConfig
from fvc_core.console import console_of_thread, get_console, labelled_console
from fvc_core.errors import NonFiniteLossError, Terminated, UserError, one_line
from fvc_core.executors import shareable
from fvc_core.sweeps.folders import check_folders, finished, keep_folders, previous_wall
from fvc_core.sweeps.plan import SWEEP, plan
from fvc_core.sweeps.spec import Point

__all__ = ["of_this_point", "plan", "points_at_once", "run_sweep"]


def run_sweep(config_path: str, arguments: list[str], *, disabled: list[str], yes: bool = False,
              name: str | None = None, fresh: bool = False, console: Console | None = None,
              at_once: int | None = None) -> int:
    """Run every point not finished yet, then print and write the ranking; 1 if a point failed.

    ``at_once``: points open at once on a shareable executor (default: enough to keep its slots busy)."""
    from fvc_core.sweeps.ranking import rank, selection_of, table, write

    console = console or get_console()
    sweep_name, folder, points = plan(config_path, arguments, disabled=disabled, yes=yes, name=name)
    ownership.check_output_dir(folder.parent, "output_dir")
    keep_folders(folder, points)
    check_folders(folder, points, fresh)
    ownership.claim(folder, SWEEP, way_out="choose another sweep name (--name) or output_dir")

    selection = selection_of(points[0][1])
    keys = list(dict.fromkeys(k for p, _ in points for k in p.varied if k != "seed"))
    wall = {} if fresh else previous_wall(folder)  # --fresh trains every point again: its time starts at 0
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
    todo = [(p, c) for p, c in points if fresh or not finished(folder / p.id, c)]
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
