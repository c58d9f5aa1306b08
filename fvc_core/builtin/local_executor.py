"""The built-in ``local`` executor: the folds one after another in this process, as fvc always ran them.

Nothing to start and nothing to import: choosing it costs nothing, and the trainer may hand it a
function that keeps what the previous fold built (the shared DataLoader and its workers).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from fvc_core.hookspecs import hookimpl

if TYPE_CHECKING:
    from fvc_core.executors import FoldFunction, FoldTask
    from fvc_core.tracking.events import Tracker


class LocalExecutorConfig(BaseModel):
    """The local executor has no keys of its own."""

    model_config = ConfigDict(extra="forbid")


class LocalExecutor:
    in_process = True

    def __init__(self, config: LocalExecutorConfig | None = None):
        self.config = config or LocalExecutorConfig()

    def start(self) -> None:
        pass

    def run(self, tasks: Sequence[FoldTask], fn: FoldFunction, events: Tracker) -> Iterator[tuple[FoldTask, Any]]:
        # A generator: a fold starts only when the trainer has taken the previous one's result, so
        # an interruption between folds leaves the later ones untouched, as before executors.
        for task in tasks:
            yield task, fn(task, events)

    def close(self) -> None:
        pass


def build_local(config: LocalExecutorConfig) -> LocalExecutor:
    return LocalExecutor(config)


@hookimpl
def register_executors(register):
    register("local", build_local, config=LocalExecutorConfig,
             description="the folds one after another in this process (the default)")
