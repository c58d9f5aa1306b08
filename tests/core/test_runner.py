"""The runner with throw-away plugins: output folder guard, tracker failure policy, run state."""

import json
import os
import signal
import subprocess
import sys
import time

from fvc_core.cli import main


def test_run_reports_to_trackers_and_records_state(events, config, tmp_path):
    assert main(["run", str(config)]) == 0
    assert events == [
        ("start", False), ("model", "a model"), ("epoch", 0, 1, {"train_loss": 0.5}),
        ("fold", {"roc_auc": 0.9}), ("end", {"roc_auc": 0.9}),
    ]
    run_dir = tmp_path / "out" / "m"
    state = json.loads((run_dir / "run.json").read_text())
    assert state["status"] == "finished" and state["model"] == "m"
    # What it was trained with stays with the run (a report written later shows these, not what is installed).
    from importlib.metadata import version

    assert state["versions"]["torch"] == version("torch") and state["versions"]["fvc-core"] == version("fvc-core")
    assert state["protocol"]["model"] == "m"
    assert "name: t" in (run_dir / "config.yaml").read_text()
    events.clear()
    # Same config again: the same run, resumed.
    assert main(["run", str(config), "trackers=[recorder]"]) == 0
    assert events[0] == ("start", True)
    assert json.loads((run_dir / "run.json").read_text())["run_id"] == state["run_id"]


def test_another_config_in_the_same_folder_is_refused_unless_fresh(events, config, tmp_path, capsys):
    assert main(["run", str(config)]) == 0
    assert main(["run", str(config), "seed=7"]) == 2
    assert "holds a run of another config" in capsys.readouterr().err
    assert main(["run", str(config), "seed=7", "--fresh"]) == 0
    assert events[-1][0] == "end"


def test_a_run_that_stopped_before_training_anything_gives_way_to_another_config(events, config, tmp_path, capsys):
    run_dir = tmp_path / "out" / "m"
    assert main(["run", str(config), "trainer.crash=true"]) == 1  # as a wrong path would: no fold wrote a file
    assert main(["run", str(config)]) == 0  # the fixed config needs no --fresh
    assert "replacing a run of another config that stopped before training anything" in capsys.readouterr().out
    assert events[-1][0] == "end" and json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    # A failed run whose folds wrote something is kept: another config is refused.
    assert main(["run", str(config), "seed=7", "trainer.crash=true"]) == 2  # refused: the run above finished
    (run_dir / "fold_0").mkdir()
    (run_dir / "fold_0" / "last.pt").write_bytes(b"weights")
    state = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**state, "status": "failed"}))
    assert main(["run", str(config), "seed=7"]) == 2
    assert "holds a run of another config" in capsys.readouterr().err


def test_splits_alone_give_way_but_a_trained_repeat_is_never_discarded(events, config, tmp_path, capsys):
    run_dir = tmp_path / "out" / "m"

    def stopped(status, *files):
        assert main(["run", str(config), "trainer.crash=true", "--fresh"]) == 1
        for name in files:
            (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (run_dir / name).write_bytes(b"x")
        state = json.loads((run_dir / "run.json").read_text())
        (run_dir / "run.json").write_text(json.dumps({**state, "status": status}))

    # The folds' splits are written before training (a missing model.weights file fails after them):
    # the fixed config replaces the run, as one whose folds wrote nothing.
    stopped("failed", "fold_0/split.parquet", "fold_1/split.parquet")
    assert main(["run", str(config)]) == 0
    assert "replacing a run of another config that stopped before training anything" in capsys.readouterr().out
    # trainer.repeats puts folds under repeat_<r>/: an interrupted run with trained folds there is kept.
    stopped("interrupted", "repeat_0/fold_0/split.parquet", "repeat_0/fold_0/model.pt")
    assert main(["run", str(config), "seed=7"]) == 2
    assert "holds a run of another config" in capsys.readouterr().err
    assert (run_dir / "repeat_0/fold_0/model.pt").read_bytes() == b"x"


def test_failing_tracker_warns_once_and_the_run_goes_on(events, config, capsys):
    assert main(["run", str(config), "recorder.broken=true"]) == 0
    out = capsys.readouterr().out
    assert out.count("tracker 'recorder' failed in start_run: ConnectionError: server unreachable") == 1
    assert [e[0] for e in events] == ["model"]  # switched off after its failure; training went on


def test_fail_fast_tracker_stops_before_training(events, config, capsys):
    assert main(["run", str(config), "recorder.broken=true", "recorder.fail_fast=true"]) == 2
    assert "tracker 'recorder' (fail_fast): ConnectionError: server unreachable" in capsys.readouterr().err
    assert events == [("check", True)]  # checked with the run folder in place; no training started


def test_trainer_failure_is_reported_to_trackers(events, config, tmp_path, capsys):
    assert main(["run", str(config), "trainer.crash=true"]) == 1
    assert events[-1] == ("fail", "RuntimeError: trainer crashed")
    state = json.loads((tmp_path / "out" / "m" / "run.json").read_text())
    assert state["status"] == "failed"


def test_a_second_run_of_a_folder_in_use_stops_with_one_line(events, config, site, tmp_path, capsys):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path]), "FVCTEST_HANG": "1"}
    first = subprocess.Popen([sys.executable, "-m", "fvc_core.cli", "run", str(config)], env=env,
                             stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while first.stdout.readline().strip() != "hanging":
            assert first.poll() is None and time.monotonic() < deadline, "the first run never started training"
        # A double launch, or a scheduler retrying a job that is still running.
        assert main(["run", str(config)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {tmp_path / 'out' / 'm'} is in use by another fvc run (pid {first.pid} on ")
        assert len(err.splitlines()) == 1
        assert main(["run", str(config), "--fresh"]) == 2  # nor may --fresh delete it under the running one
        assert (tmp_path / "out" / "m" / "run.json").exists()
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert main(["run", str(config)]) == 0  # the lock died with its process: the same run resumes
    assert events[-1][0] == "end"
