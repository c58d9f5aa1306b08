"""From a resolved config to a finished run: build the plugins, guard the output folder, call the trainer.

Data flows one way: config -> plugin registry -> runner -> trainer -> trackers. The job itself is
built by ``fvc_core.jobs``, the same way a worker that trains one fold builds it.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from fvc_core import ownership
from fvc_core.atomic import write_atomic
from fvc_core.config import ResolvedConfig
from fvc_core.console import get_console, is_interactive
from fvc_core.contract import Job
from fvc_core.errors import UserError, one_line
from fvc_core.fold_worker import FoldExecutor
from fvc_core.jobs import RunPlugins, build_job, build_plugins, run_info, run_protocol, versions
from fvc_core.plugins import get_registry
from fvc_core.tracking.build import build_trackers
from fvc_core.tracking.events import INTERRUPTED, RunSummary
from fvc_core.tracking.tracker_set import TrackerSet


def _write_json(path: Path, data: dict[str, Any]) -> None:
    write_atomic(path, json.dumps(data, indent=2, default=str))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


RUN_WAY_OUT = "choose another output_dir, or move that folder away"


def _made_before_markers(run_dir: Path) -> bool:
    """A run folder of fvc before ``.fvc-owned`` existed: its run.json has a run id and a config hash."""
    try:
        state = json.loads((run_dir / "run.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "run_id" in state and "config_hash" in state


def prepare_run_dir(config: ResolvedConfig, *, fresh: bool,
                    note: Callable[[str], None] | None = None) -> tuple[Path, str, bool, tuple[str, ...]]:
    """The run folder, the run id, whether this resumes an earlier run of the same config, and the
    hashes that run's checkpoints may carry besides this config's (fvc_core.config.identity).

    Only a folder fvc made (fvc_core.ownership) is resumed, replaced or removed: one with
    anyone else's files is refused, with ``--fresh`` too. A folder holding another config is
    refused: resuming it would mix two experiments. A folder an older fvc made, before keys that
    now hold their defaults existed, holds the same experiment and is resumed. One whose run failed
    before any fold wrote anything (a wrong path in the config, say) holds nothing to mix, and is
    replaced: fixing the mistake must not need ``--fresh``.
    """
    from fvc_core.config.identity import earlier_hashes, match_run

    run_dir = config.run_dir
    ownership.check_claimable(run_dir, ownership.RUN, way_out=RUN_WAY_OUT, legacy=_made_before_markers)
    state_path = run_dir / "run.json"
    config_hash = config.hash()
    if state_path.exists() and not fresh:
        try:
            state = json.loads(state_path.read_text())
        except (OSError, json.JSONDecodeError):
            raise UserError(f"{state_path}: unreadable run state; use --fresh to start over") from None
        if not isinstance(state, dict):
            raise UserError(f"{state_path}: unreadable run state; use --fresh to start over")
        match = match_run(run_dir, state, config)
        if not match.same and _trained_nothing(run_dir, state):
            if note is not None:
                note(f"{run_dir}: replacing a run of another config that stopped before training anything")
            fresh = True
        elif not match.same:
            raise UserError(
                f"{run_dir} holds a run of another config (hash {state.get('config_hash')}, this one "
                f"{config_hash}{match.why}); choose another output_dir, or pass --fresh to discard it and start over"
            )
        else:
            if match.filled and note is not None:
                note(f"{run_dir}: {match.note()}")
            # A folder of the version before markers gets one now.
            ownership.claim(run_dir, ownership.RUN, way_out=RUN_WAY_OUT, legacy=_made_before_markers)
            return run_dir, state["run_id"], True, earlier_hashes(state, match)
    if fresh:
        ownership.remove(run_dir, ownership.RUN, way_out=RUN_WAY_OUT, legacy=_made_before_markers)
    ownership.claim(run_dir, ownership.RUN, way_out=RUN_WAY_OUT, legacy=_made_before_markers)
    return run_dir, uuid.uuid4().hex, False, ()


# What a run writes before its first fold trains; all of it is made again from the config.
_BEFORE_TRAINING = {".fvc-owned", "run.json", "config.yaml"}
SPLIT_FILE = "split.parquet"


def trained_anything(run_dir: Path) -> bool:
    """Whether a run folder holds anything a fold trained: a file other than the run's state, its
    config and the folds' splits (written before training starts), at any depth (repeat_<r>/fold_<k>
    of trainer.repeats included). A stray file counts: when unsure, keep the folder."""
    for path in run_dir.rglob("*"):
        if path.is_dir():
            continue
        top = path.parent == run_dir
        if not ((top and path.name in _BEFORE_TRAINING) or (not top and path.name == SPLIT_FILE)):
            return True
    return False


def _trained_nothing(run_dir: Path, state: dict[str, Any]) -> bool:
    """A run that ended (not one still going in another process) before any fold trained."""
    return state.get("status") in ("failed", "interrupted") and not trained_anything(run_dir)


def run_experiment(config: ResolvedConfig, *, fresh: bool = False, console: Console | None = None,
                   executor: Any = None) -> RunSummary:
    """Run an experiment to the end (or resume it); the trainer writes the outputs, trackers are told.

    ``executor``: one already started (a sweep keeps one for all its points); it is left open."""
    console = console or get_console()
    # Before any plugin or tracker writes there (the lock, mlflow.db, results.duckdb).
    ownership.check_output_dir(Path(config.output_dir), "output_dir")
    registry = get_registry(config.disabled_plugins)
    own = executor is None
    if own:
        executor = registry.get("executors", config.executor.name).factory(config.executor.config)
        # Before the dataset (the synthetic one writes data): a cluster nobody answers is one line, nothing written.
        executor.start()
    try:
        plugins = build_plugins(config, registry)
        trackers = build_trackers(config, registry, console)
        with run_folder_lock(Path(config.output_dir), config.run_dir.name):
            return _start(config, fresh, console, plugins, trackers, executor)
    finally:
        if own:
            executor.close()


@contextlib.contextmanager
def run_folder_lock(output_dir: Path, model_name: str) -> Iterator[None]:
    """Held while a run uses ``<output_dir>/<model_name>``: a second `fvc run` of it (a double launch,
    a scheduler's retry of a job still running) stops with a one-line error instead of training
    the same folds into the same files. Beside the folder, so ``--fresh`` can remove the folder.

    A POSIX record lock (``lockf``), not ``flock``: a forked child (a DataLoader worker) shares
    the parent's open file, so it kept a ``flock`` after the parent was killed and a retry was
    refused; record locks belong to the process that took them and die with it alone. (Their
    catch: closing any descriptor of the file drops the lock, so nothing else in fvc opens it.)
    """
    with ownership.os_errors(output_dir, "output_dir"):
        output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / f".{model_name}.lock"
    with ownership.os_errors(path):
        handle = open(path, "a+")  # noqa: SIM115 (closed below; only opening it is the user's path's fault)
    with handle:
        try:
            import fcntl

            fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            raise UserError(f"{output_dir / model_name} is in use by another fvc run ({_holder(path)}); wait for "
                            "it to end, or choose another output_dir") from None
        except (ImportError, OSError):
            pass  # no record locks here (Windows, some network filesystems): unguarded, as before
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {_now()}\n")
        handle.flush()
        yield


def _holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it; never a process that is gone.

    The holder writes its line just after taking the lock, so for a moment the file may still
    name the previous holder, dead since: then it is read again, and not named if that persists.
    """
    for _ in range(20):
        try:
            text = path.read_text().strip()
        except OSError:
            text = ""
        words = text.split()
        if len(words) >= 4 and words[0] == "pid" and words[1].isdigit() and words[2] == "on":
            host = words[3].rstrip(",")
            if host != socket.gethostname() or _alive(int(words[1])):
                return text
        time.sleep(0.05)
    return "another process"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True


def _start(config: ResolvedConfig, fresh: bool, console: Console, plugins: RunPlugins, trackers: TrackerSet,
           executor: Any = None) -> RunSummary:
    run_dir, run_id, resumed, earlier = prepare_run_dir(
        config, fresh=fresh, note=lambda text: console.print(f"[dim]{text}[/]", soft_wrap=True, markup=False,
                                                             style="dim"))
    (run_dir / "config.yaml").write_text(config.to_yaml())
    state_path = run_dir / "run.json"
    protocol = run_protocol(config, plugins.dataset, plugins.trainer)
    # What the run was trained with, so a report written later shows these and not what is installed then.
    state = {
        "run_id": run_id,
        "experiment": config.experiment,
        "model": config.model.name,
        "config_hash": config.hash(),
        "status": "running",
        "started": _now(),
        "versions": versions(plugins.registry),
        "protocol": protocol,
    }
    if earlier:
        # Checkpoints an older fvc wrote in this folder carry the hash it gave the same experiment.
        state["earlier_config_hashes"] = list(earlier)
    _write_json(state_path, state)
    run = run_info(config, run_id=run_id, run_dir=run_dir, protocol=protocol, versions=state["versions"],
                   resumed=resumed, earlier_config_hashes=earlier)
    job = build_job(config, plugins, run, trackers=trackers, console=console, interactive=is_interactive(),
                    executor=FoldExecutor(executor) if executor is not None else None)
    trackers.open(run_dir)
    try:
        return _run(plugins.trainer, job, trackers, state_path, state)
    finally:
        trackers.close()


def _run(trainer: Any, job: Job, trackers: TrackerSet, state_path: Path, state: dict[str, Any]) -> RunSummary:
    run = job.run
    try:
        trackers.check(run)
    except UserError:
        _write_json(state_path, {**state, "status": "failed", "error": "a fail_fast tracker failed its check",
                                 "ended": _now()})
        raise
    trackers.start_run(run)
    try:
        summary = trainer.run(job)
    except KeyboardInterrupt:
        _write_json(state_path, {**state, "status": "interrupted", "ended": _now()})
        trackers.fail_run(run, INTERRUPTED)
        raise
    except BaseException as exc:
        _write_json(state_path, {**state, "status": "failed", "error": one_line(exc), "ended": _now()})
        trackers.fail_run(run, one_line(exc))
        raise
    # Written first: trackers that keep run.json (MLflow's artifact) get the final state.
    _write_json(state_path, {**state, "status": "finished", "ended": _now()})
    trackers.end_run(summary)
    return summary
