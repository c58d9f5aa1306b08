"""A fold trained data-parallel: its ranks started and watched where the fold runs.

A trainer that trains a fold on several processes says so in the task (``FoldTask.workers``, the
supervised trainer's ``trainer.workers_per_fold``). Wherever the executor runs such a task (``fvc
run``'s process under ``local``, a Ray worker under ``ray``), :func:`run_fold_on_ranks` opens the
rendezvous (a ``torch.distributed.TCPStore`` on 127.0.0.1 that this process holds, so no port is taken
in between), spawns one process per rank with ``torch.multiprocessing``, hands rank 0's tracker events
to the fold's ``events`` while it waits, and ends every rank as soon as one fails. Each rank rebuilds
the run from the task (with ``fold_worker``'s builder, handed in) and calls the trainer's
``run_rank(job, fold, repeat, rank, world, port)``, which joins the process group and trains its share
(``fvc_core.training.distributed``); rank 0 writes the fold's files and returns its result.

An executor may instead place each rank in a process of its own on any node (fvc-ray's
``executor.rank_placement``): rank 0's process opens the store on its node's address
(:func:`open_rendezvous`), and each rank runs :func:`train_rank` through
``fvc_core.fold_worker.run_fold_rank`` (both named by the contract).

torch loads only when a fold is launched: ``fvc --help`` imports this module without it.
"""

from __future__ import annotations

import datetime
import os
import queue as queue_module
import signal
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from fvc_core.errors import PluginError, UserError
from fvc_core.executors import FoldTask, ForwardingTracker, deliver

# The store's patience with ranks that do not come: the ranks' own collectives use the same variable.
TIMEOUT_S = float(os.environ.get("FVC_DIST_TIMEOUT_S", "1800"))


Builder = Callable[[FoldTask], tuple[Any, Any]]
"""``build(task) -> (job, trainer)``: the run rebuilt from a task, as a worker builds it."""


class RankFailed(UserError):
    """A rank of a data-parallel fold died; finished epochs are kept."""


def _rank_main(rank: int, task: FoldTask, build: Builder, port: int, channel: Any, parent: int) -> None:
    """One rank of a fold, in a process of its own (spawned: nothing of the launcher's state)."""
    from fvc_core.children import die_with_parent

    # A rank only serves the fold: a launcher killed outright takes its ranks with it.
    die_with_parent(parent)
    # Ctrl-C reaches the whole process group; the launcher ends the ranks and says what happened, once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if task.cwd and os.path.isdir(task.cwd):
            os.chdir(task.cwd)
        events = ForwardingTracker(lambda event: channel.put(("event", event)))
        result = train_rank(task, build, rank, port, events)
        if rank == 0:
            channel.put(("result", result))
    except BaseException as exc:  # noqa: BLE001 - handed to the launcher, which raises it there
        try:
            channel.put(("error", rank, exc))
        except Exception:  # noqa: BLE001 - an exception that does not pickle: its text
            channel.put(("error", rank, RankFailed(f"{task.label}: rank {rank}: {type(exc).__name__}: {exc}")))
        raise SystemExit(1) from None


def train_rank(task: FoldTask, build: Builder, rank: int, port: int, events: Any, host: str = "127.0.0.1",
               local_rank: int | None = None, local_world: int | None = None) -> Any:
    """Rank ``rank`` of the fold of ``task``, in this process: rebuild the run with ``build(task)`` and
    call the trainer's ``run_rank``, which joins the group at ``host:port``. Rank 0's tracker events go
    to ``events`` and it returns the fold's result; the other ranks print nothing and return None.
    ``local_rank``/``local_world``: see the trainer's ``run_rank`` (default: every rank on this machine)."""
    job, trainer = build(task)
    run_rank = getattr(trainer, "run_rank", None)
    if run_rank is None:
        raise PluginError(f"trainer {job.config.trainer.name!r} cannot train a fold on several processes "
                          "(it has no run_rank)")
    if rank == 0:
        job.trackers = events
    else:
        from rich.console import Console

        job.console = Console(quiet=True)  # one voice: rank 0 prints the fold's lines
    kwargs = {} if host == "127.0.0.1" and local_rank is None and local_world is None else {
        "host": host, "local_rank": local_rank, "local_world": local_world}
    return run_rank(job, task.fold, task.repeat, rank, task.workers, port, **kwargs)


def open_rendezvous(host: str) -> Any:
    """The store a fold's ranks meet at, held by the caller as long as the fold trains: listening on
    ``host`` at a free port that the system picks (``store.port``), so no port is taken in between."""
    import torch.distributed as dist

    return dist.TCPStore(host, 0, is_master=True, wait_for_workers=False,
                         timeout=datetime.timedelta(seconds=TIMEOUT_S))


def run_fold_on_ranks(task: FoldTask, events: Any, build: Builder) -> Any:
    """Train the fold of ``task`` on ``task.workers`` spawned processes and return rank 0's result;
    each rank builds the run's ``(job, trainer)`` with ``build(task)`` (a module-level function: it
    travels pickled); rank 0's tracker events reach ``events`` as they come. A rank that raised re-raises its error
    here; a rank killed or crashed ends the others and raises :class:`RankFailed` in one line."""
    import torch.multiprocessing as mp

    world = task.workers
    store = open_rendezvous("127.0.0.1")
    channel = mp.get_context("spawn").Queue()
    context = mp.start_processes(_rank_main, args=(task, build, store.port, channel, os.getpid()), nprocs=world,
                                 join=False, start_method="spawn")
    errors: list[tuple[int, BaseException]] = []
    results: list[Any] = []

    def drain(wait: float) -> None:
        try:
            item = channel.get(timeout=wait) if wait else channel.get_nowait()
        except queue_module.Empty:
            return
        while True:
            if item[0] == "event":
                deliver(events, item[1])
            elif item[0] == "result":
                results.append(item[1])
            else:
                errors.append((item[1], item[2]))
            try:
                item = channel.get_nowait()
            except queue_module.Empty:
                return

    try:
        while True:
            drain(0.2)
            try:
                if context.join(timeout=0):
                    break
            except mp.ProcessExitedException as exc:
                # join() has ended the other ranks; what the failing rank sent comes first, unless a rank
                # was killed: its peers then fail at their next collective ("Connection closed by peer"),
                # and may be the first join() sees, but the death is the cause to name.
                drain(1.0)
                killed = _killed(context.processes, exc)
                if errors and killed is None:
                    raise min(errors, key=lambda e: e[0])[1] from None
                raise RankFailed(f"{task.label}: {_died(killed or exc, world)}; the other ranks were stopped, "
                                 "finished epochs are kept: run the same command again to resume") from None
        drain(1.0)
    finally:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
        for process in context.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
        channel.close()
        del store
    if not results:
        raise RankFailed(f"{task.label}: every data-parallel rank ended, but rank 0 returned no result")
    return results[0]


def _killed(processes: list[Any], exc: Any) -> Any:
    """The rank killed by a signal (not join()'s own SIGTERM to the others), as ``exc`` describes one;
    None if every rank exited on its own."""
    if exc.exit_code is not None and exc.exit_code < 0:
        return exc
    for index, process in enumerate(processes):
        code = process.exitcode
        if code is not None and code < 0 and code != -signal.SIGTERM:
            return SimpleNamespace(error_index=index, exit_code=code)
    return None


def _died(exc: Any, world: int) -> str:
    code = exc.exit_code
    if code is not None and code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    return f"rank {exc.error_index} of {world} data-parallel workers {how}"
