"""The sweep's folder and its points' run folders: which a point keeps, whether one holds another
config, which points are finished, and how long each has run before."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fvc_core import ownership
from fvc_core.config import ResolvedConfig
from fvc_core.errors import UserError
from fvc_core.sweeps.plan import MAX_PROBLEM_LINES, SWEEP
from fvc_core.sweeps.spec import Point


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


def keep_folders(folder: Path, points: list[tuple[Point, ResolvedConfig]]) -> None:
    """A point whose config a folder already holds keeps that folder, even if its id would read
    differently now (a key that varies since values were added): its finished folds are kept.
    So does one whose folder an older fvc made, before keys now at their defaults existed."""
    from fvc_core.config.identity import match_run, stored_config

    existing = _existing(folder)
    ids = {p.id for p, _ in points}
    stored = {name: stored_config(folder / name) or {} for name, _ in existing.values()} if existing else {}
    for point, config in points:
        held = existing[config.hash()][0] if config.hash() in existing else None
        if held is None and (folder / point.id / "run.json").exists():
            continue  # its own folder: check_folders says whether that holds this config
        held = held or next((name for name, state in existing.values()
                             if match_run(folder / name, state, config, stored[name]).same), None)
        if held and held != point.id and held not in ids:
            ids.discard(point.id)
            point.id = held
            ids.add(held)


def check_folders(folder: Path, points: list[tuple[Point, ResolvedConfig]], fresh: bool) -> None:
    """Before anything runs: the sweep folder is fvc's, and no point's folder holds another config."""
    from fvc_core.config.identity import match_run

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


def finished(run_dir: Path, config: ResolvedConfig) -> bool:
    """The point's run ended with every fold, for this very config: nothing to run again."""
    try:
        state = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return False
    from fvc_core.config.identity import match_run

    return isinstance(state, dict) and state.get("status") == "finished" and match_run(run_dir, state, config).same


def previous_wall(folder: Path) -> dict[str, float]:
    """Seconds each point has run in earlier invocations (sweep.json), so a resumed sweep adds to them."""
    try:
        data = json.loads((folder / "sweep.json").read_text())
        return {str(k): float(v) for k, v in (data.get("wall_s") or {}).items()}
    except (OSError, ValueError, TypeError, AttributeError):
        return {}
