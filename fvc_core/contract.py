"""Everything a plugin imports from the core, from one module: no plugin imports another ``fvc_core`` module.

::

    from fvc_core.contract import hookimpl, Job, RunSummary, Tracker, TrackerConfig, UserError

The hooks themselves are specified in ``fvc_core/hookspecs.py`` (what each kind of plugin
registers); this module names what crosses between the core and a plugin, in groups:

- **Hooks and registration**: ``hookimpl``, ``hookspec`` (for a plugin that declares hooks of its own in
  ``fvc_addhooks``), the ``Register`` callback, ``registered(kind)`` (what every enabled plugin registered
  under a kind such as ``layouts``), ``plugin_hooks()`` (call a hook every enabled plugin may implement),
  ``create_plugin(kind, name, config)``, ``closest`` (the "did you mean" of every unknown-name error),
  ``validate_model`` (a plugin's pydantic model, every problem one line), ``load_config``.
- **Training**: ``Dataset``, ``Job``, ``ClipSpec``, ``ModelInput``, the executor protocol (``Executor``,
  ``FoldTask``, ``FoldFunction``; ``ForwardingTracker`` and ``deliver`` carry a remote fold's events;
  ``maps_items`` and ``executor_from``: per-item work such as ``fvc prepare``'s videos on the executor a
  run would use, chosen by ``--executor``/``--config`` with ``fvc run``'s one-line errors; for an executor
  that places a data-parallel fold's ranks itself, one per process on any node: ``open_rendezvous(host)``,
  the store rank 0's process holds, and ``run_fold_rank(task, rank, host, port, events)``, one rank).
- **Tracking**: ``Tracker``, ``TrackerConfig``, ``RunInfo``, ``FoldResult``, ``RunSummary``, ``Evaluation``,
  ``INTERRUPTED``, ``KILLED``, ``test_metric_name``, ``TEST_METRIC_NAMES``, ``history_steps``,
  ``selected_value``, ``track_evaluation`` (a finished run's trackers told of an evaluation).
- **A finished run**: ``open_run(path)`` and the reader's parts (``read_run_config``, ``run_folds``,
  ``RunFolds``, ``fold_dirs``, ``fold_number``, ``load_fold_model``, ``score_videos``, ``aggregation_of``,
  ``NO_FRAME_SCORES``), metrics computed as training computes them (``compute_metrics``,
  ``frame_metrics``, ``summarize``, ``SCORE_METRICS``, ``fake_probability``, ``EarlyStopping``), and a
  sweep ranked as ``fvc sweep`` ranks it (``Selection``, ``rank``, ``ranking_table``).
- **Files**: ``write_atomic`` (a file is always whole), ``file_sha256``, ``write_output`` /
  ``check_output`` / ``OutputKind`` (a command's ``-o FILE``: only a file the same command wrote is
  ever replaced), ``fit`` (a picture's size scaled into a square: one rule for every decoder),
  ``ownership`` (the marker of a folder fvc made: ``check_claimable``, ``claim``, ``os_errors``),
  ``plain`` (JSON-ready values), ``labels_as_classes`` (a label column as 0/1).
- **Console and processes**: ``get_console``, ``is_interactive``, ``die_with_parent``.
- **Errors** shown as one line, exit 2: ``UserError``, ``ConfigError``, ``BadVideoError``,
  ``PluginError``, ``DiskFullError``, ``one_line``, ``is_disk_full``; ``Terminated`` (SIGTERM).

Light on purpose: no torch, polars, mlflow or duckdb at import (``fvc --help``, ``fvc plugins`` and
``fvc check`` import plugin modules, which import this). Names whose home is heavier (the console,
the finished-run reader, metrics, sweeps) are looked up on first use (``__getattr__`` below); heavy
types appear in annotations only. ``tests/core/test_architecture.py`` holds every plugin to this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel

from fvc_core import ownership
from fvc_core.atomic import file_sha256, write_atomic
from fvc_core.children import die_with_parent
from fvc_core.errors import (
    BadVideoError,
    ConfigError,
    DiskFullError,
    PluginError,
    Terminated,
    UserError,
    is_disk_full,
    one_line,
)
from fvc_core.executors import Executor, FoldFunction, FoldTask
from fvc_core.hookspecs import hookimpl, hookspec
from fvc_core.model_input import ClipSpec, ModelInput
from fvc_core.output_file import OutputKind, check_output, write_output
from fvc_core.pictures import fit
from fvc_core.tracking.events import (
    INTERRUPTED,
    KILLED,
    TEST_METRIC_NAMES,
    Evaluation,
    FoldResult,
    RunInfo,
    RunSummary,
    Tracker,
    TrackerConfig,
    history_steps,
    selected_value,
    test_metric_name,
)

if TYPE_CHECKING:
    import pluggy
    import polars
    import torch
    from rich.console import Console

    from fvc_core.config import ResolvedConfig
    from fvc_core.tracking.tracker_set import TrackerSet

# Names whose home imports rich, polars, numpy or torch: looked up on first use (PEP 562), so that
# importing the contract stays light. name -> (module, attribute).
_LAZY: dict[str, tuple[str, str]] = {
    # console
    "get_console": ("fvc_core.console", "get_console"),
    "is_interactive": ("fvc_core.console", "is_interactive"),
    # plugins and configs
    "closest": ("fvc_core.plugins", "closest"),
    "validate_model": ("fvc_core.plugins", "validate_model"),
    "load_config": ("fvc_core.config", "load_config"),
    "registered": ("fvc_core.registrations", "registered"),
    "Registered": ("fvc_core.registrations", "Registered"),
    # files
    "plain": ("fvc_core.training.outputs", "plain"),
    "read_json": ("fvc_core.training.outputs", "read_json"),
    "labels_as_classes": ("fvc_core.labels", "labels_as_classes"),
    # a finished run
    "open_run": ("fvc_core.finished_run", "open_run"),
    "FinishedRun": ("fvc_core.finished_run", "FinishedRun"),
    "read_run_config": ("fvc_core.finished_run", "read_run_config"),
    "run_folds": ("fvc_core.finished_run", "run_folds"),
    "RunFolds": ("fvc_core.finished_run", "RunFolds"),
    "fold_dirs": ("fvc_core.finished_run", "fold_dirs"),
    "fold_number": ("fvc_core.finished_run", "fold_number"),
    "load_fold_model": ("fvc_core.finished_run", "load_fold_model"),
    "score_videos": ("fvc_core.finished_run", "score_videos"),
    "aggregation_of": ("fvc_core.training.scoring", "aggregation_of"),
    "NO_FRAME_SCORES": ("fvc_core.training.scoring", "NO_FRAME_SCORES"),
    "fake_probability": ("fvc_core.training.scoring", "fake_probability"),
    "compute_metrics": ("fvc_core.training.metrics", "compute_metrics"),
    "frame_metrics": ("fvc_core.training.metrics", "frame_metrics"),
    "summarize": ("fvc_core.training.metrics", "summarize"),
    "apply_temperature": ("fvc_core.training.calibration", "apply_temperature"),
    "SCORE_METRICS": ("fvc_core.tracking.metric_names", "SCORE_METRICS"),
    "EarlyStopping": ("fvc_core.training.schedule", "EarlyStopping"),
    # models
    "running_stats_frozen": ("fvc_core.batchnorm", "running_stats_frozen"),
    # sweeps
    "Selection": ("fvc_core.sweeps.ranking", "Selection"),
    "rank": ("fvc_core.sweeps.ranking", "rank"),
    "ranking_table": ("fvc_core.sweeps.ranking", "table"),
    # trackers and executors
    "track_evaluation": ("fvc_core.tracking.build", "track_evaluation"),
    "ForwardingTracker": ("fvc_core.executors", "ForwardingTracker"),
    "deliver": ("fvc_core.executors", "deliver"),
    "maps_items": ("fvc_core.executors", "maps_items"),
    "open_rendezvous": ("fvc_core.fold_ranks", "open_rendezvous"),
    "run_fold_rank": ("fvc_core.fold_worker", "run_fold_rank"),
    "executor_from": ("fvc_core.executor_choice", "executor_from"),
}

__all__ = [
    "BadVideoError", "ClipSpec", "ConfigError", "Dataset", "DiskFullError", "Evaluation", "Executor", "FoldFunction",
    "FoldResult", "FoldTask", "INTERRUPTED", "Job", "KILLED", "ModelInput", "OutputKind", "PluginError", "Register",
    "RunInfo", "RunSummary", "TEST_METRIC_NAMES", "Terminated", "Tracker", "TrackerConfig", "UserError",
    "check_output", "create_plugin", "die_with_parent", "file_sha256", "fit", "history_steps", "hookimpl", "hookspec",
    "is_disk_full", "one_line", "ownership", "plugin_hooks", "selected_value", "test_metric_name", "write_atomic",
    "write_output",
]
__all__ += sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value  # looked up once
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


def create_plugin(kind: str, name: str, config: Any = None, *, disabled: Iterable[str] = ()) -> Any:
    """What the enabled plugin that registered ``name`` under ``kind`` (``datasets``, ``models``...) builds
    from ``config`` (a mapping of its keys, its config model, or None): a finished run's dataset rebuilt
    from its config.yaml, say; ``disabled``: plugins left out besides ``-p no:NAME`` (a config's
    ``plugins.disable``). A PluginError for an unknown name, a ConfigError for a bad key."""
    from fvc_core.plugins import get_registry

    return get_registry(disabled).create(kind, name, config)


def plugin_hooks() -> pluggy.HookRelay:
    """The hooks of every enabled plugin (``-p no:NAME`` honoured), to call one that plugins may
    implement: ``plugin_hooks().prepare_run(args=args)``. How one plugin offers another an optional
    integration without importing it: the caller declares the hook (``hookspec`` in its
    ``fvc_addhooks``), the other implements it."""
    from fvc_core.plugins import get_registry

    return get_registry().hook




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
