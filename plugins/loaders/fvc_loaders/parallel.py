"""One job per video over a process pool, with a rich progress bar: what ``verify`` and ``prepare`` share."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
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


def _init_worker(function: Callable[[Any, Any], Any], state: Any) -> None:
    global _function, _state
    _function, _state = function, state
    # Each worker is one decoder; torch's own thread pool would only fight the other workers.
    # torch reads this when (and if) a job imports it; importing it here would cost every worker seconds.
    os.environ["OMP_NUM_THREADS"] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _call(item: Any) -> Any:
    assert _function is not None
    return _function(_state, item)


def map_with_progress(
    function: Callable[[Any, T], R],
    state: Any,
    items: Sequence[T],
    *,
    workers: int | None,
    description: str,
) -> Iterator[tuple[int, R]]:
    """``(i, function(state, items[i]))`` in completion order, with a progress bar.

    ``function`` must be a module-level function (it is sent to spawned
    processes); ``state`` is pickled once per worker, not once per item.
    ``workers`` of 0 or 1 runs in this process. Closing the iterator early (the
    caller stops on a bad video) cancels the jobs not yet started.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from fvc_core.console import get_console, is_interactive

    workers = default_workers() if workers is None else workers
    workers = max(0, min(workers, len(items)))
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=get_console(), disable=not is_interactive(), transient=False,
    )
    with progress:
        task = progress.add_task(description, total=len(items))
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
                                       initargs=(function, state))
        try:
            futures = {executor.submit(_call, item): i for i, item in enumerate(items)}
            for future in as_completed(futures):
                progress.advance(task)
                yield futures[future], future.result()
        finally:
            executor.shutdown(wait=True, cancel_futures=True)
