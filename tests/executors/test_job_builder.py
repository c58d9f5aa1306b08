"""One way a run's job is built: a worker that receives a fold's task builds the job the driver built,
and where a fold runs is the executor's choice, never the trainer's."""

from __future__ import annotations

import pytest

pytest.importorskip("fvc_loaders")
pytest.importorskip("fvc_naive_cnn")

from fvc_core import fold_worker  # noqa: E402
from fvc_core.config import load_config  # noqa: E402
from fvc_core.console import get_console  # noqa: E402
from fvc_core.executors import FoldTask  # noqa: E402
from fvc_core.fold_worker import FoldExecutor, run_fold_task  # noqa: E402
from fvc_core.jobs import build_job, build_plugins, run_info, run_protocol, versions  # noqa: E402
from fvc_core.plugins import get_registry  # noqa: E402
from fvc_core.tracking.tracker_set import TrackerSet  # noqa: E402
from tests.builders import tiny_experiment, tiny_videos  # noqa: E402


def test_a_worker_builds_from_the_task_the_job_the_driver_built(tmp_path):
    config = load_config(tiny_experiment(tmp_path, tiny_videos(tmp_path / "videos", videos=2), seed=7))
    registry = get_registry(config.disabled_plugins)
    plugins = build_plugins(config, registry)
    run_dir = config.run_dir
    run_dir.mkdir(parents=True)
    # A resumed run whose checkpoints an older fvc wrote: what the worker must know travels in the task.
    run = run_info(config, run_id="abc", run_dir=run_dir, protocol=run_protocol(config, plugins.dataset,
                                                                                 plugins.trainer),
                   versions=versions(registry), resumed=True, earlier_config_hashes=("0123456789abcdef",))
    driver = build_job(config, plugins, run, trackers=TrackerSet([]), console=get_console(), interactive=False)

    worker, trainer = fold_worker._fold_context(FoldTask.of(driver, fold=1))
    try:
        assert worker.run == driver.run  # experiment, id, config, hash, folder, folds, protocol, versions...
        assert worker.run.earlier_config_hashes == ("0123456789abcdef",) and worker.run.resumed
        assert worker.config.as_dict() == driver.config.as_dict()
        assert type(trainer) is type(plugins.trainer) and trainer.config == plugins.trainer.config
        assert type(worker.build_model()) is type(driver.build_model())
        assert worker.dataset.table().equals(driver.dataset.table())
    finally:
        fold_worker._contexts.clear()


class _Executor:
    """Records the function it was handed; runs nothing."""

    def __init__(self, in_process: bool):
        self.in_process = in_process
        self.given = None

    def run(self, tasks, fn, events):
        self.given = fn
        return iter(())

    def capacity(self) -> int:
        return 3


@pytest.mark.parametrize("in_process", [True, False])
def test_the_executor_not_the_trainer_picks_the_function_a_fold_runs(in_process):
    def trainers_own(task, events):  # a closure over the trainer's loader: never leaves the process
        raise AssertionError("not called here")

    plugin = _Executor(in_process)
    executor = FoldExecutor(plugin)
    assert list(executor.run([], trainers_own, events=None)) == []
    # In this process the trainer's own function (it shares the loader of the fold before); elsewhere
    # the task alone, rebuilt in the worker by the builder above.
    assert plugin.given is (trainers_own if in_process else run_fold_task)
    assert executor.in_process is in_process and executor.capacity() == 3  # the rest is the plugin's
