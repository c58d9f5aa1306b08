"""How a run's job is built: the one way, used by the driver (``fvc run``) and by a worker alike.

From a resolved config the registry gives the run's plugins (dataset, model, trainer, in that
order: the first one missing is the error the user sees), the run's protocol and versions, its
``RunInfo`` and the ``Job`` a trainer's ``run(job)`` or ``run_fold(job, fold)`` receives. The
driver (``fvc_core.runner``) adds the trackers and the started executor; a worker that received a
``FoldTask`` (``fvc_core.fold_worker``) builds the same job from the task's config, so a fold
trained on another node sees what the driver's trainer would have.

The executor a job carries is the executor plugin seen through ``fvc_core.fold_worker.FoldExecutor``:
the trainer hands it the function that trains a fold here, sharing what this process holds, and
the executor decides: run it as it is when the folds run in this process, or run the task alone
(``fold_worker.run_fold_task``) in whatever process receives it. The trainer never chooses.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fvc_core.contract import Job
from fvc_core.tracking.events import RunInfo

if TYPE_CHECKING:
    from rich.console import Console

    from fvc_core.config.model import ResolvedConfig
    from fvc_core.executors import Executor
    from fvc_core.plugins import Registration, Registry


@dataclass
class RunPlugins:
    """What a run's config names, built: its dataset and trainer, and its model's registration."""

    registry: Registry
    dataset: Any
    model: Registration
    trainer: Any

    def model_builder(self, config: ResolvedConfig) -> Callable[[], Any]:
        """A function that builds a fresh model from the config on every call (``Job.build_model``)."""
        model = self.model
        return lambda: model.factory(config.model.config)


def build_plugins(config: ResolvedConfig, registry: Registry) -> RunPlugins:
    """The dataset, the model's registration and the trainer, in that order."""
    dataset = registry.get("datasets", config.data.name).factory(config.data.config)
    model = registry.get("models", config.model.name)
    trainer = registry.get("trainers", config.trainer.name).factory(config.trainer.config)
    return RunPlugins(registry, dataset, model, trainer)


def run_protocol(config: ResolvedConfig, dataset: Any, trainer: Any) -> dict[str, Any]:
    """How the run's numbers are measured: the model, the seed, the dataset's ``protocol()`` (table,
    layout, preprocessing, frames, size, sampler) and the trainer's (split, folds, aggregation).
    Both ``protocol()`` are optional in the contract."""
    protocol: dict[str, Any] = {"model": config.model.name, "seed": config.seed}
    for part in (dataset, trainer):
        describe = getattr(part, "protocol", None)
        if callable(describe):
            protocol.update(describe())
    return protocol


def versions(registry: Registry) -> dict[str, str]:
    """Python's, every loaded plugin distribution's, torch's and av's versions."""
    out = {"python": sys.version.split()[0]}
    for plugin in registry.plugins:
        out[plugin.distribution] = plugin.version
    # From the installed metadata, not the modules: the run's versions are recorded before torch loads.
    from importlib.metadata import PackageNotFoundError, version

    for dist in ("torch", "av"):
        with contextlib.suppress(PackageNotFoundError):
            out[dist] = version(dist)
    return out


def run_info(config: ResolvedConfig, *, run_id: str, run_dir: Path, protocol: dict[str, Any],
             versions: dict[str, str], resumed: bool, earlier_config_hashes: tuple[str, ...] = ()) -> RunInfo:
    """What trackers are told of the run (and what the trainer writes its outputs under)."""
    return RunInfo(experiment=config.experiment, run_id=run_id, config=config.as_dict(), config_hash=config.hash(),
                   model_name=config.model.name, run_dir=Path(run_dir),
                   folds=int(getattr(config.trainer.config, "folds", 1)), protocol=protocol, versions=versions,
                   resumed=resumed, sweep=config.sweep, earlier_config_hashes=tuple(earlier_config_hashes))


def build_job(config: ResolvedConfig, plugins: RunPlugins, run: RunInfo, *, trackers: Any, console: Console,
              interactive: bool, executor: Executor | None = None) -> Job:
    """The job a trainer receives. ``executor``: where its folds run, as the trainer sees it
    (``fvc_core.fold_worker.FoldExecutor``); None leaves them in this process."""
    return Job(config=config, run=run, dataset=plugins.dataset, build_model=plugins.model_builder(config),
               trackers=trackers, console=console, interactive=interactive, executor=executor)
