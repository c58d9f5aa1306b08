"""One job per video over a process pool, with a rich progress bar: what ``verify`` and ``prepare`` share.

``fvc prepare --executor ray`` hands the jobs to an executor instead (``fvc_core.contract.maps_items``: a
Ray task per video); each job's output file is then made in a private folder of the worker and sent
back, and this process alone writes it into the output folder (one writer, as with the tables).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_state: Any = None
_function: Callable[[Any, Any], Any] | None = None


def default_workers() -> int:
    """The CPU cores this process may use (cgroup/affinity aware where the OS says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


# How long workers told to stop (Ctrl-C, SIGTERM) get to remove their partial files before they
# are killed: a worker blocked in a read that the signal does not interrupt would otherwise hold
# the command's exit for ever.
STOP_GRACE_S = 5.0


class _Stopped(BaseException):
    """SIGTERM in a worker during a job: unwinds the job (its ``finally`` clauses remove what it
    left half-written), then the worker exits."""


_busy = False  # a job is under way in this worker
_stopping = False


def _init_worker(function: Callable[[Any, Any], Any], state: Any, parent: int) -> None:
    global _function, _state
    _function, _state = function, state
    from fvc_core.contract import die_with_parent

    # Nothing else would stop a worker whose parent was killed outright: it would wait for the next
    # job for ever, and keep multiprocessing's resource tracker alive with it.
    die_with_parent(parent)
    # Ctrl-C reaches the whole process group: the parent decides what it means and stops the
    # workers itself (a KeyboardInterrupt here would print a traceback per worker). SIGTERM, from
    # the parent or a scheduler, stops the worker quietly.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    # Each worker is one decoder; torch's own thread pool would only fight the other workers.
    # torch reads this when (and if) a job imports it; importing it here would cost every worker seconds.
    os.environ["OMP_NUM_THREADS"] = "1"
    # OpenCV's own pool (the Haar detector, resizing) ignores OMP_NUM_THREADS and takes every core: two
    # workers then fought over both cores and -j 2 gained nothing on a 2-core machine (docs/data.md).
    os.environ["OPENCV_FOR_THREADS_NUM"] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)
    cv2 = sys.modules.get("cv2")
    if cv2 is not None:
        cv2.setNumThreads(1)


@contextlib.contextmanager
def _born_ignoring_sigint() -> Iterator[None]:
    """Workers are started (on ``submit``) with SIGINT ignored, which they keep across exec: a Ctrl-C
    reaching the process group while a worker still imports, before ``_init_worker`` runs, would
    otherwise print its KeyboardInterrupt traceback. The parent's own handler is back right after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _on_sigterm(signum: int, frame: Any) -> None:
    global _stopping
    if not _busy:
        os._exit(0)
    # Once only: a second SIGTERM (the group's, then the parent's) must not cut the job's cleanup short.
    if not _stopping:
        _stopping = True
        raise _Stopped()


def _call(item: Any) -> Any:
    global _busy
    assert _function is not None
    _busy = True
    try:
        return _function(_state, item)
    except _Stopped:
        pass
    finally:
        _busy = False
        if _stopping:  # also when a library swallowed _Stopped and the job ran to its end
            os._exit(0)


def _stop(executor: Any) -> None:
    """Stop every worker now: SIGTERM, a grace to clean up, then SIGKILL for those still there."""
    # Taken before the shutdown, which forgets them.
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_S
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C or SIGTERM, also when it reached the caller and closed this generator."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return True
        seen = seen.__context__
    return False


def map_with_progress(
    function: Callable[[Any, T], R],
    state: Any,
    items: Sequence[T],
    *,
    workers: int | None,
    description: str,
    executor: Any = None,
    output: int | None = None,
) -> Iterator[tuple[int, R]]:
    """``(i, function(state, items[i]))`` in completion order, with a progress bar.

    ``function`` must be a module-level function (it is sent to spawned
    processes); ``state`` is pickled once per worker, not once per item.
    ``workers`` of 0 or 1 runs in this process. Closing the iterator early (the
    caller stops on a bad video) cancels the jobs not yet started.

    ``executor``: one that runs items elsewhere (``maps_items``, the Ray executor) takes the jobs instead
    of the pool, ``workers`` then bounding the jobs at once (None: as many as it has room for); any other
    (None, ``local``) leaves them to the pool. ``output``: the index in each item of the file its job
    writes, made on the executor's worker and written here (see the module's docstring).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from fvc_core.contract import get_console, is_interactive, maps_items

    chosen = workers
    workers = default_workers() if workers is None else workers
    workers = max(0, min(workers, len(items)))
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=get_console(), disable=not is_interactive(), transient=False,
    )
    with progress:
        task = progress.add_task(description, total=len(items))
        if executor is not None and maps_items(executor):
            yield from _on_executor(executor, function, state, items, limit=None if chosen is None else max(1, chosen),
                                    output=output, advance=lambda: progress.advance(task))
            return
        if workers <= 1:
            for i, item in enumerate(items):
                result = function(state, item)
                progress.advance(task)
                yield i, result
            return

        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn, not fork: the parent may hold torch/OpenMP threads, which fork does not survive reliably.
        context = multiprocessing.get_context("spawn")
        executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                       initargs=(function, state, os.getpid()))
        try:
            with _born_ignoring_sigint():
                futures = {executor.submit(_call, item): i for i, item in enumerate(items)}
            for future in as_completed(futures):
                progress.advance(task)
                yield futures[future], future.result()
        except BaseException as exc:
            if _interrupted(exc):
                _stop(executor)
            raise
        finally:
            # Stopped early for another reason (a bad video under on_bad_video: fail): the jobs
            # under way finish, so their copies are kept.
            executor.shutdown(wait=True, cancel_futures=True)


def _on_executor(executor: Any, function: Callable[[Any, T], R], state: Any, items: Sequence[T], *,
                 limit: int | None, output: int | None, advance: Callable[[], None]) -> Iterator[tuple[int, R]]:
    from fvc_core.contract import write_atomic

    if output is None:
        runs = executor.map(function, state, items, limit=limit)
    else:
        runs = executor.map(_made_here, (function, state, output), items, limit=limit)
    try:
        for i, answer in runs:
            if output is not None:
                answer, data = answer
                if data is not None:
                    target = Path(items[i][output])  # type: ignore[index]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    write_atomic(target, data, per_process=True, suffix=target.suffix)
            advance()
            yield i, answer
    finally:
        runs.close()


WORKER_TMP = "fvc-prepare-"


def _made_here(state: tuple[Callable[[Any, Any], Any], Any, int], item: Sequence[Any]) -> tuple[Any, bytes | None]:
    """On an executor's worker: the job with its output file (``item[at]``) made in a folder of this
    worker's own, and (the job's result, that file's bytes or None where it made none)."""
    function, inner, at = state
    remove_dead_workers_folders()
    with tempfile.TemporaryDirectory(prefix=f"{WORKER_TMP}{os.getpid()}-") as folder:
        made = Path(folder) / Path(item[at]).name
        result = function(inner, type(item)((*item[:at], str(made), *item[at + 1 :])))
        return result, made.read_bytes() if made.is_file() else None


def remove_dead_workers_folders() -> None:
    """The folders of ``_made_here`` whose worker was killed mid-job (its pid gone): ours by name."""
    from fvc_loaders.prepare import _alive

    for path in Path(tempfile.gettempdir()).glob(f"{WORKER_TMP}*-*"):
        pid = path.name[len(WORKER_TMP):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            import shutil

            shutil.rmtree(path, ignore_errors=True)
