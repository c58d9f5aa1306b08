"""Background trackers: built and called in a child process, every event in order, failures contained.

The ``journal`` tracker of fake_plugin.py writes each event with the pid of the process that saw
it, so the tests see where it ran and in what order, across kills and resumes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fvc_core.cli import main

from .fake_plugin import install

CONFIG = """
experiment: e
output_dir: {out}
data: {{name: d}}
model: {{name: m}}
trainer: {{name: t, folds: 2}}
trackers: [journal]
journal: {{journal: {journal}}}
"""

WHOLE_RUN = [["built"], ["start", False], ["epoch", 0], ["fold", 0], ["epoch", 1], ["fold", 1], ["end", 2]]


@pytest.fixture
def config(site, tmp_path) -> Path:
    install(site)
    path = tmp_path / "exp.yaml"
    path.write_text(CONFIG.format(out=tmp_path / "out", journal=tmp_path / "journal.jsonl"))
    return path


def journal(config: Path) -> list[list]:
    path = config.parent / "journal.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_background_tracker_runs_in_a_child_and_gets_every_event_in_order(config, capsys):
    assert main(["run", str(config)]) == 0
    lines = journal(config)
    assert [line[1:] for line in lines] == WHOLE_RUN  # all of it, by the time `fvc run` returns
    assert len({pid for pid, *_ in lines}) == 1 and lines[0][0] != os.getpid()
    assert "warning" not in capsys.readouterr().out


def test_background_false_keeps_it_in_the_training_process(config):
    assert main(["run", str(config), "journal.background=false"]) == 0
    lines = journal(config)
    assert [line[1:] for line in lines] == WHOLE_RUN and {pid for pid, *_ in lines} == {os.getpid()}


def test_a_failing_background_tracker_warns_once_and_the_run_goes_on(config, capsys):
    assert main(["run", str(config), "journal.broken=true"]) == 0
    out = capsys.readouterr().out
    assert out.count("tracker 'journal' failed in start_run: ConnectionError: server unreachable") == 1
    assert [line[1:] for line in journal(config)] == [["built"]]  # off after its failure
    assert json.loads((config.parent / "out" / "m" / "run.json").read_text())["status"] == "finished"


def test_a_background_process_that_dies_is_one_warning(config, capsys):
    assert main(["run", str(config), "journal.exit_in=fold"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.count("trackers 'journal' stopped: their process ended (exit code 3)") == 1
    assert [line[1:] for line in journal(config)] == [["built"], ["start", False], ["epoch", 0]]


def test_a_killed_run_is_recorded_killed_and_its_resume_waits_for_those_records(config, site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    cmd = [sys.executable, "-m", "fvc_core.cli", "run", str(config), "journal.slow_fail_s=2"]
    first = subprocess.Popen(cmd, env={**env, "FVCTEST_HANG": "1"}, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while first.stdout.readline().strip() != "hanging":
        assert first.poll() is None and time.monotonic() < deadline, "the first attempt never reached its hang"
    first.send_signal(signal.SIGKILL)  # no fail_run from the training process: as a lost machine
    first.wait()
    # Resumed at once: its tracker must not start while the killed attempt's is still writing (2 s).
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    events = [line[1:] for line in journal(config)]
    assert events[:5] == [["built"], ["start", False], ["epoch", 0], ["fold", 0], ["fail", "killed"]]
    assert events[5:] == [["built"], ["start", True], ["epoch", 0], ["fold", 0], ["epoch", 1], ["fold", 1], ["end", 2]]


def test_ctrl_c_reaches_the_training_process_which_reports_it_interrupted(config, site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path]), "FVCTEST_HANG": "1"}
    run = subprocess.Popen([sys.executable, "-m", "fvc_core.cli", "run", str(config)], env=env,
                           stdout=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while run.stdout.readline().strip() != "hanging":
        assert run.poll() is None and time.monotonic() < deadline, "the run never reached its hang"
    os.killpg(run.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group, tracker process too
    assert run.wait(timeout=60) == 130
    lines = journal(config)
    # The tracker process ignored the signal and recorded what the training process told it.
    assert [line[1:] for line in lines][-1] == ["fail", "interrupted"] and len({pid for pid, *_ in lines}) == 1


def test_a_script_without_a_main_guard_runs_its_experiment_once(config, site, tmp_path):
    script = tmp_path / "train.py"
    script.write_text(f"from fvc_core.cli import main\nprint('exit', main(['run', {str(config)!r}]))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    # Once: multiprocessing's spawn would have rerun the script in the tracker process ("exit 1" too).
    # (A loaded machine may add the "waiting for trackers" line: what counts is one "exit 0".)
    exits = [line for line in done.stdout.splitlines() if line.startswith("exit")]
    assert done.returncode == 0 and exits == ["exit 0"], done.stdout + done.stderr
    assert "warning" not in done.stderr
    assert [line[1:] for line in journal(config)] == WHOLE_RUN


def test_ctrl_c_while_waiting_for_slow_trackers_stops_them(config, site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), *sys.path])}
    run = subprocess.Popen([sys.executable, "-m", "fvc_core.cli", "run", str(config), "journal.slow_end_s=120"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)
    deadline = time.monotonic() + 60
    while "waiting for trackers 'journal' to finish" not in run.stdout.readline():
        assert run.poll() is None and time.monotonic() < deadline, "fvc run never said it was waiting"
    os.killpg(run.pid, signal.SIGINT)
    assert run.wait(timeout=30) == 130  # not the two minutes the tracker would have taken
    assert "run the same command again to let them catch up" in run.stdout.read()
    assert [line[1:] for line in journal(config)][-1] == ["fold", 1]  # its end_run never completed


def test_a_tracker_that_falls_behind_never_holds_up_training(config):
    # The tracker starts only once the trainer has sent 3000 epochs (about 5 MB): had sending
    # waited for the tracker, neither would ever have gone on.
    assert main(["run", str(config), "trainer.burst=3000", "journal.wait_for_sent=true"]) == 0
    events = [line[1:] for line in journal(config)]
    assert events[:2] == [["built"], ["sent", True]]
    assert events[3:3003] == [["epoch", 0]] * 3000 and events[-1] == ["end", 2]
