"""Where a run's folds go: the executor as the trainer sees it, and one fold run from its task alone.

:class:`FoldExecutor` is what ``Job.executor`` holds: the trainer hands it its own function for a
fold, and it runs that when the executor plugin keeps the folds in this process, or
:func:`run_fold_task` when they go to other processes (a Ray worker on another node), so the
trainer never chooses and never imports this module.

``run_fold_task`` is the function run for each task that left the process: it checks that the run folder is here and
writable, takes the fold's lock, builds the run's job from the task's config the way the driver
built it (``fvc_core.jobs``), and calls the trainer's ``run_fold(job, fold)``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from fvc_core.config.validation import resolve
from fvc_core.console import get_console
from fvc_core.errors import PluginError, UserError
from fvc_core.executors import Executor, FoldFunction, FoldTask
from fvc_core.jobs import build_job, build_plugins, run_info, run_protocol, versions
from fvc_core.plugins import get_registry
from fvc_core.tracking.events import FoldResult, Tracker
from fvc_core.tracking.tracker_set import TrackerSet

STORAGE_RULE = ("a run on several machines needs its output_dir on storage every node sees "
                "(a shared filesystem mounted at the same path; docs/scale.md)")


def check_storage(task: FoldTask) -> None:
    """Stop in one line, naming this node and the path, when the run folder is not here or not writable."""
    run_dir = Path(task.run_dir)
    node = _node_name()
    if not run_dir.is_dir():
        raise UserError(f"node {node}: cannot see the run folder {run_dir} ({task.label}); {STORAGE_RULE}")
    probe = run_dir / f".fvc-write-probe-{socket.gethostname()}-{os.getpid()}"
    try:
        probe.write_bytes(b"")
    except OSError as exc:
        raise UserError(f"node {node}: cannot write in the run folder {run_dir} ({exc.strerror or exc}; "
                        f"{task.label}); {STORAGE_RULE}") from None
    finally:
        with contextlib.suppress(OSError):
            probe.unlink()


def _node_name() -> str:
    host = socket.gethostname()
    ray = sys.modules.get("ray")  # never imported here: only a process Ray already runs has a node address
    try:
        if ray is not None and ray.is_initialized():
            return f"{host} ({ray.util.get_node_ip_address()})"
    except Exception:  # noqa: S110 - not in a Ray worker after all: the host name alone
        pass
    return host


FOLD_LOCKS = ".fold-locks"


@contextlib.contextmanager
def fold_lock(task: FoldTask) -> Iterator[None]:
    """Held while a process trains this fold: two attempts of one task (a retry of a worker the
    cluster thought lost, still running) never train it at once; the second waits for the first,
    then finds its checkpoint or its finished fold. A ``lockf`` record lock, like the run's: it
    dies with the process that holds it, so a SIGKILLed worker never blocks its retry."""
    folder = Path(task.run_dir) / FOLD_LOCKS
    folder.mkdir(exist_ok=True)
    path = folder / f"repeat_{task.repeat}_fold_{task.fold}.lock"
    with open(path, "a+") as handle:
        try:
            import fcntl

            fcntl.lockf(handle, fcntl.LOCK_EX)
        except (ImportError, OSError):
            pass  # no record locks on this filesystem: unguarded, as a run folder lock is then
        yield


_contexts: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def _fold_context(task: FoldTask) -> tuple[Any, Any]:
    """(job, trainer) for the task's run, built once per process: a worker that receives several
    folds of one run builds its dataset and trainer once, as the in-process run does."""
    key = (task.run_dir, task.run_id, repr(sorted(task.config.items(), key=lambda kv: kv[0])))
    if key in _contexts:
        return _contexts[key]
    config = resolve(dict(task.config), disabled=list(task.disabled_plugins), source="the run's config.yaml")
    registry = get_registry(config.disabled_plugins)
    plugins = build_plugins(config, registry)
    run = run_info(config, run_id=task.run_id, run_dir=Path(task.run_dir),
                   protocol=run_protocol(config, plugins.dataset, plugins.trainer), versions=versions(registry),
                   resumed=task.resumed, earlier_config_hashes=task.earlier_config_hashes)
    # The fold's events go where the executor says (run_fold_task sets them); no trackers of its own here.
    job = build_job(config, plugins, run, trackers=TrackerSet([]), console=get_console(), interactive=False)
    trainer = plugins.trainer
    _contexts.clear()  # one run per process at a time: the previous run's dataset goes
    _contexts[key] = (job, trainer)
    return job, trainer


def run_fold_task(task: FoldTask, events: Tracker) -> FoldResult:
    """Run one fold in this process from its task alone: check the storage, take the fold's lock,
    rebuild the run's plugins, and call the trainer's ``run_fold(job, fold)``; its epochs go to
    ``events``. Safe to call again for the same task (a retry): the trainer resumes the fold from
    its last checkpoint, or returns it as finished."""
    if task.cwd and os.path.isdir(task.cwd):
        os.chdir(task.cwd)
    check_storage(task)
    with fold_lock(task):
        if task.workers > 1:  # the fold's ranks, started here (each rebuilds the run as below)
            from fvc_core.fold_ranks import run_fold_on_ranks

            return run_fold_on_ranks(task, events, _fold_context)
        job, trainer = _fold_context(task)
        run_fold = getattr(trainer, "run_fold", None)
        if run_fold is None:
            raise PluginError(f"trainer {job.config.trainer.name!r} cannot run a fold on its own (it has no "
                              "run_fold); use executor.name=local")
        job.trackers = events
        kwargs = {"repeat": task.repeat} if task.repeat else {}
        return run_fold(job, task.fold, **kwargs)


def run_fold_rank(task: FoldTask, rank: int, host: str, port: int, events: Tracker) -> FoldResult | None:
    """One rank of a data-parallel fold in this process, the only rank here (an executor placed each
    rank on a node of its own: ``fvc_ray``'s ``executor.rank_placement``): check the storage, rebuild
    the run from the task and train this rank's share, meeting the others at ``host:port`` (the store
    rank 0's process opened with ``fvc_core.contract.open_rendezvous``). Rank 0 holds the fold's lock
    while it trains, sends the fold's events to ``events`` and returns its result; the others None."""
    from fvc_core.fold_ranks import train_rank

    if task.cwd and os.path.isdir(task.cwd):
        os.chdir(task.cwd)
    check_storage(task)
    # Rank 0 is the one writer: two attempts of a fold never write it at once (the others only read).
    with fold_lock(task) if rank == 0 else contextlib.nullcontext():
        return train_rank(task, _fold_context, rank, port, events, host=host, local_rank=0, local_world=1)


class FoldExecutor:
    """The executor plugin as a trainer sees it: ``run(tasks, fn, events)`` runs ``fn`` (the trainer's
    own way of training a fold here) when the plugin runs the folds in this process, and the task
    alone (:func:`run_fold_task`) when they leave it. Every other attribute
    (``capacity``, ``cancel``...) is the plugin's own."""

    def __init__(self, executor: Executor):
        self.executor = executor
        self.in_process = bool(getattr(executor, "in_process", False))

    def start(self) -> None:
        self.executor.start()

    def run(self, tasks: Sequence[FoldTask], fn: FoldFunction, events: Tracker) -> Iterator[tuple[FoldTask, Any]]:
        if not self.in_process:
            return self.executor.run(tasks, run_fold_task, events)
        if all(task.workers == 1 for task in tasks):
            return self.executor.run(tasks, fn, events)

        def here(task: FoldTask, events: Tracker) -> Any:
            # A data-parallel fold's ranks are processes of their own, each rebuilding the run from the
            # task: started from this process as from a worker's.
            return (run_fold_task if task.workers > 1 else fn)(task, events)

        return self.executor.run(tasks, here, events)

    def close(self) -> None:
        self.executor.close()

    def __getattr__(self, name: str) -> Any:
        if name == "executor":  # not set yet (a copy being made): no recursion
            raise AttributeError(name)
        return getattr(self.executor, name)
