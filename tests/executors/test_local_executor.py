"""The local executor: today's behaviour, in this process, one fold after another, nothing to start."""

from __future__ import annotations

import os
import pickle
import sys
from pathlib import Path
from types import SimpleNamespace

from fvc_core.config import load_config
from fvc_core.executors import Executor, FoldTask
from fvc_core.plugins import get_registry
from fvc_core.tracking import RunInfo

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"


def local_executor():
    config = load_config(QUICKSTART)
    reg = get_registry().get("executors", config.executor.name)
    return reg.factory(config.executor.config)


def test_local_runs_each_fold_in_this_process_one_after_another(tmp_path, recorder):
    executor = local_executor()
    assert isinstance(executor, Executor) and executor.in_process
    executor.start()
    started: list[int] = []

    def fold(task: FoldTask, events) -> int:
        assert events is recorder  # the driver's trackers themselves: nothing crosses a process
        started.append(task.fold)
        events.log_epoch(task.fold, 1, {"train_loss": 1.0}, 1)
        return os.getpid()

    tasks = [FoldTask(config={}, run_dir=str(tmp_path), fold=k) for k in range(3)]
    runs = executor.run(tasks, fold, recorder)
    for task, pid in runs:
        # A fold starts only once the previous one's result is taken: an interruption between
        # folds leaves the later ones untouched.
        assert started == list(range(task.fold + 1)) and pid == os.getpid()
    executor.close()
    assert [e[1] for e in recorder.events] == [0, 1, 2]


def test_the_default_executor_starts_nothing_and_imports_nothing():
    before = set(sys.modules)
    executor = local_executor()
    executor.start()
    executor.close()
    assert not {m for m in set(sys.modules) - before if m.split(".")[0] in ("ray", "torch")}


def test_a_fold_task_is_self_contained_and_pickles(tmp_path):
    config = load_config(QUICKSTART)
    run = RunInfo(experiment=config.experiment, run_id="abc", config=config.as_dict(), config_hash=config.hash(),
                  model_name=config.model.name, run_dir=tmp_path / "naive_cnn", folds=5)
    task = FoldTask.of(SimpleNamespace(config=config, run=run), fold=3)
    again = pickle.loads(pickle.dumps(task))
    assert again == task and hash(again) == hash(task)
    assert (again.fold, again.repeat, again.seed, again.run_id) == (3, 0, config.seed, "abc")
    assert again.config == config.as_dict() and Path(again.run_dir).is_absolute()
