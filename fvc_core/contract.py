"""Everything a plugin author imports, from one module.

::

    from fvc_core.contract import hookimpl, Job, RunSummary, Tracker, TrackerConfig, UserError

The hooks themselves are specified in ``fvc_core/hookspecs.py`` (what each kind of plugin
registers); this module names the types that cross between the core and a plugin: the ``register``
callback a hook receives, the dataset a trainer reads, the ``Job`` a trainer receives, the events
and results trackers receive, the executor protocol and its ``FoldTask``, and the errors a plugin
raises for a user's mistake, and ``write_output``, the one way a command writes its ``-o FILE``
(``fvc_core/output_file.py``: only a file the same command wrote is ever replaced).

Light on purpose: no torch, polars, mlflow or duckdb at import (``fvc --help``, ``fvc plugins`` and
``fvc check`` import plugin modules, which import this). Heavy types appear in annotations only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from fvc_core.errors import BadVideoError, ConfigError, DiskFullError, PluginError, UserError, one_line
from fvc_core.executors import Executor, FoldFunction, FoldTask
from fvc_core.hookspecs import hookimpl
from fvc_core.model_input import ClipSpec, ModelInput
from fvc_core.output_file import OutputKind, check_output, write_output
from fvc_core.tracking.events import (
    INTERRUPTED,
    KILLED,
    Evaluation,
    FoldResult,
    RunInfo,
    RunSummary,
    Tracker,
    TrackerConfig,
    test_metric_name,
)

if TYPE_CHECKING:
    import polars
    import torch
    from rich.console import Console

    from fvc_core.config import ResolvedConfig
    from fvc_core.tracking.tracker_set import TrackerSet

__all__ = [
    "BadVideoError", "ClipSpec", "ConfigError", "Dataset", "DiskFullError", "Evaluation", "Executor", "FoldFunction",
    "FoldResult", "FoldTask", "INTERRUPTED", "Job", "KILLED", "ModelInput", "OutputKind", "PluginError", "Register",
    "RunInfo", "RunSummary", "Tracker", "TrackerConfig", "UserError", "check_output", "hookimpl", "one_line",
    "test_metric_name", "write_output",
]


class Register(Protocol):
    """The ``register`` callback every ``register_<kind>`` hook receives; call it once per thing provided.

    ``config`` is a pydantic model of the plugin's own keys (those beside ``name`` in its section of
    experiment.yaml; none when omitted); ``factory(config)`` receives an instance of it and builds
    the thing. ``description`` is the one line ``fvc plugins`` shows."""

    def __call__(self, name: str, factory: Callable[[Any], Any], config: type[BaseModel] | None = None,
                 description: str = "") -> None: ...


@runtime_checkable
class Dataset(Protocol):
    """What the built-in ``supervised`` trainer calls on the object a dataset plugin's factory returns."""

    on_bad_video: Literal["fail", "skip"]
    """The policy for a video ``read_video`` cannot read: stop the run naming it, or leave it out and
    list it in skipped_videos.json. Optional: a dataset without it means ``"fail"``."""

    def table(self) -> polars.DataFrame:
        """One row per video: ``video_path`` (absolute, str), ``label`` (int, 0 real, 1 fake) and
        ``group`` (str: videos of one group never straddle a split; the path itself when the data has
        no groups); other columns are passed along. A UserError for a bad table, before any decoding."""
        ...

    def read_video(self, path: str, *, augment: bool = False, seed: int = 0) -> torch.Tensor:
        """The clip of one video: uint8 ``(T, 3, H, W)``, the same T for every video, a function of
        ``(path, augment, seed)`` alone (workers may decode it). A BadVideoError naming the file for a
        video it cannot read."""
        ...

    def check(self) -> list[str]:
        """What ``fvc check`` can verify without decoding a video or writing a file (the table exists,
        has its columns, its labels are known, its videos exist): a UserError in one line for a
        problem, else notes worth showing (possibly none). Optional: ``fvc check`` skips a dataset
        without it."""
        ...

    def protocol(self) -> dict[str, Any]:
        """How a clip is made (frames, size, sampler...), recorded with the run so that every number
        can be traced to how it was measured. Optional."""
        ...


@dataclass
class Job:
    """What a trainer's ``run(job) -> RunSummary`` receives: everything resolved, nothing to look up."""

    config: ResolvedConfig
    run: RunInfo
    dataset: Dataset | Any
    build_model: Callable[[], Any]
    """A fresh model from the config, on every call."""
    trackers: TrackerSet | Tracker
    """Report log_epoch / end_fold here; a failing tracker is handled inside."""
    console: Console
    interactive: bool
    executor: Executor | None = None
    """Where the trainer's folds run (the ``executor:`` section's plugin, started); None: in-process."""
