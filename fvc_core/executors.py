"""Where a fold is executed: the task that describes it, the function that runs it, the executor contract.

A trainer plans a run (splits made and saved before any training), turns each unfinished fold
into a :class:`FoldTask` and hands the tasks to the run's executor, chosen by the ``executor:``
section (``local``, built in, or a plugin such as ``ray`` from fvc-ray). The executor yields each
fold's result as it finishes; the trainer writes the summary.

A task is self-contained and picklable: the resolved config as plain data, the run folder, the
fold. An executor whose folds leave the process is handed ``fvc_core.fold_worker.run_fold_task``
(by the runtime, not the trainer: ``fvc_core.jobs.FoldExecutor``), which rebuilds the registry, the
dataset, the model and the trainer from the task in whatever process receives it, so a Ray worker
on another node needs nothing from the driver but the task and storage that both see.

Tracker events a task emits (``log_epoch``) go to the ``events`` tracker the executor passes in:
the driver's trackers themselves in-process, or a forwarder whose events the executor delivers to
them in the driver, in the order each task emitted them. The trackers only ever run in the driver
(DuckDB admits one writing process per file; MLflow keeps one parent run with a child per fold).

Standard library only at import: ``fvc --help``/``check``/``plugins`` must not pay for torch or Ray.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from fvc_core.tracking.events import FoldResult, Tracker


@dataclass(frozen=True)
class FoldTask:
    """One fold of one run, as any process can receive it (everything here pickles)."""

    config: dict[str, Any]
    """The resolved config as plain data (``ResolvedConfig.as_dict()``: what config.yaml holds)."""
    run_dir: str
    """``<output_dir>/<model name>``, absolute: the path every node must see."""
    fold: int
    repeat: int = 0
    """Which repetition of the cross-validation, for repeated CV; 0 otherwise."""
    seed: int = 42
    run_id: str = ""
    resumed: bool = False
    disabled_plugins: tuple[str, ...] = ()
    cwd: str = field(default_factory=os.getcwd)
    """The driver's working folder: relative paths in the config mean the same thing on every node."""
    earlier_config_hashes: tuple[str, ...] = ()
    """``RunInfo.earlier_config_hashes``: the fold's checkpoints may carry these."""
    workers: int = 1
    """Processes that train this fold together (data-parallel, ``fvc_core.fold_ranks``): with more than
    one, wherever the task runs starts that many ranks, each calling the trainer's ``run_rank``."""

    def __hash__(self) -> int:  # the config dict is not hashable; a fold of a run is one task
        return hash((self.run_dir, self.run_id, self.repeat, self.fold))

    @property
    def key(self) -> tuple[int, int]:
        return (self.repeat, self.fold)

    @property
    def label(self) -> str:
        return f"fold {self.fold}" if not self.repeat else f"repeat {self.repeat} fold {self.fold}"

    @classmethod
    def of(cls, job: Any, fold: int, repeat: int = 0, workers: int = 1) -> FoldTask:
        """The task of ``fold`` of the run a trainer received as ``job`` (a ``fvc_core.runner.Job``)."""
        return cls(config=job.config.as_dict(), run_dir=str(Path(job.run.run_dir).absolute()), fold=int(fold),
                   repeat=int(repeat), seed=int(job.config.seed), run_id=str(job.run.run_id),
                   resumed=bool(job.run.resumed), disabled_plugins=tuple(job.config.disabled_plugins),
                   earlier_config_hashes=tuple(getattr(job.run, "earlier_config_hashes", ())),
                   workers=int(workers))


FoldFunction = Callable[[FoldTask, "Tracker"], Any]
"""``fn(task, events) -> result``; an executor that leaves the process needs a picklable one
(a module-level function such as ``fvc_core.fold_worker.run_fold_task``)."""


@runtime_checkable
class Executor(Protocol):
    """What an executor plugin's factory returns.

    ``in_process`` says whether tasks run in the calling process: then the trainer may hand it a
    function that shares what the process already holds (the loader of the previous fold).
    """

    in_process: bool

    def start(self) -> None:
        """Connect to (or start) whatever runs the tasks; a UserError in one line when that is
        impossible (an address nobody answers). Called before anything is written."""

    def run(self, tasks: Sequence[FoldTask], fn: FoldFunction, events: Tracker) -> Iterator[tuple[FoldTask, Any]]:
        """Run ``fn(task, events)`` for every task and yield ``(task, result)`` as each finishes.

        Every event a task emitted reaches ``events`` before its result is yielded. A task that
        raises stops the run with that exception (the others are cancelled)."""

    def close(self) -> None:
        """Release what ``start`` took; safe to call twice."""


def shareable(executor: Any) -> bool:
    """Whether several runs may use ``executor`` at once, each ``run`` called from a thread of its own
    (``fvc sweep`` then runs its points side by side). Optional in the contract; such an executor has

    - ``capacity() -> int``: how many tasks it runs at once, all runs together (a sweep opens about
      that many folds' worth of points);
    - ``cancel()``: every ``run`` under way, in any thread, cancels its tasks and raises
      ``fvc_core.errors.Terminated`` in its caller (Ctrl-C, SIGTERM, or a point's fatal error);

    and any limit it has (``max_concurrent``) bounds the tasks of all runs together.
    """
    return not getattr(executor, "in_process", True) and all(
        callable(getattr(executor, name, None)) for name in ("capacity", "cancel"))


# -- events crossing processes ------------------------------------------------------------------

class ForwardingTracker:
    """The ``events`` of a task outside the driver: each event becomes ``send((method, args))``,
    which the executor delivers to the driver's trackers in order. Only the fold's own events
    travel; run-level ones (start_run, end_run, fail_run) are the driver's alone."""

    name = "events"

    def __init__(self, send: Callable[[tuple[str, tuple[Any, ...]]], None]):
        self._send = send

    def log_epoch(self, fold: int, epoch: int, metrics: dict[str, float], step: int) -> None:
        self._send(("log_epoch", (fold, epoch, dict(metrics), step)))

    def end_fold(self, result: FoldResult) -> None:
        self._send(("end_fold", (result,)))

    def warn(self, message: str) -> None:
        self._send(("warn", (message,)))

    def note(self, message: str) -> None:
        self._send(("note", (message,)))

    def __getattr__(self, name: str) -> Callable[..., None]:
        # Run-level calls a trainer may make on its trackers (check, start_run...) are the driver's business.
        if name.startswith("_"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def deliver(events: Tracker, event: tuple[str, tuple[Any, ...]]) -> None:
    """Call the driver's tracker method an event names."""
    method, args = event
    target = getattr(events, method, None) if method in _DELIVERED else None
    if target is not None:
        target(*args)


_DELIVERED = ("log_epoch", "end_fold", "warn", "note")


# -- per-item work (fvc prepare's videos) --------------------------------------------------------

ItemFunction = Callable[[Any, Any], Any]
"""``fn(state, item) -> result``: one unit of per-item work (a video to copy); module-level, so that it
pickles by reference into whatever process runs it."""


def maps_items(executor: Any) -> bool:
    """Whether ``executor`` runs per-item work elsewhere (``fvc prepare --executor ray``). Optional in the
    contract; such an executor is not ``in_process`` and has

    - ``map(fn, state, items, *, limit=None) -> Iterator[tuple[int, result]]``: ``fn(state, items[i])``
      for every item, ``(i, result)`` yielded as each finishes; ``state`` shipped once, not once per item;
      at most ``limit`` items at once (None: as many as it has room for); an item that raises stops the
      map with that exception; closing the iterator, an error, Ctrl-C or SIGTERM cancel the items under
      way and those not started.

    An in-process executor (``local``) has none: the caller keeps its own process pool.
    """
    return not getattr(executor, "in_process", True) and callable(getattr(executor, "map", None))
