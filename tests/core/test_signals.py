"""Signals on real processes: SIGTERM is Ctrl-C with another name, and no child outlives a killed parent.

``fvc run`` runs on real encoded clips with DataLoader workers and a background tracker process;
the signals are real, sent to the training process alone or to its whole process group (what Slurm
and Kubernetes do). Every wait is on an event (a file appears, a process ends), with a generous
deadline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

for plugin in ("fvc_loaders", "fvc_naive_cnn", "fvc_duckdb"):
    pytest.importorskip(plugin)

import duckdb  # noqa: E402

from tests.builders import tiny_experiment, tiny_videos  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
TERMINATED = "terminated (SIGTERM): progress so far is saved; run the same command again to resume"
DEADLINE_S = 60.0

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")


def group_of(pgid: int) -> set[int]:
    """Live (not zombie) processes of a process group."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, _ppid, pgrp = stat[stat.rindex(")") + 2:].split()[:3]
        if int(pgrp) == pgid and state != "Z":
            found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def wait_until_gone(pids: set[int], what: str) -> None:
    deadline = time.monotonic() + DEADLINE_S
    while left := {pid for pid in pids if alive(pid)}:
        assert time.monotonic() < deadline, f"{what} still running {DEADLINE_S:.0f} s later: {sorted(left)}"
        time.sleep(0.05)


def wait_for(path: Path, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 240
    while not path.exists():
        assert process.poll() is None, f"the run ended before {path} appeared: {process.communicate()}"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("signals")
    # Enough epochs that the run is still training when the first one is saved.
    return tiny_experiment(root, tiny_videos(root / "videos"), experiment="signals",
                           trainer={"epochs": 12, "num_workers": 2, "early_stopping": {"patience": None}},
                           trackers=["console", "duckdb"])


@pytest.mark.parametrize("target", ["process", "group"])
def test_sigterm_saves_records_says_one_line_and_the_same_command_resumes(experiment, target, tmp_path):
    out = tmp_path / "out"
    cmd = [*FVC, "run", str(experiment), f"output_dir={out}"]
    run_dir = out / "naive_cnn"
    run = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    wait_for(run_dir / "fold_0" / "last.pt", run)
    family = group_of(run.pid)
    assert len(family) >= 4, family  # the run, two DataLoader workers, the tracker process
    if target == "group":
        os.killpg(run.pid, signal.SIGTERM)  # as Slurm does: workers and tracker process get it too
    else:
        run.send_signal(signal.SIGTERM)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 143, stdout + stderr
    assert stderr.strip().splitlines() == [TERMINATED], stderr  # no worker's traceback, nothing else
    assert "Traceback" not in stdout + stderr
    state = json.loads((run_dir / "run.json").read_text())
    assert state["status"] == "interrupted"
    wait_until_gone(family, "processes of the terminated run")
    # The tracker process was told before it ended, whatever signal it got itself.
    con = duckdb.connect(str(out / "results.duckdb"), read_only=True)
    try:
        assert con.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]
    finally:
        con.close()

    again = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    history = json.loads((run_dir / "fold_0" / "history.json").read_text())
    assert [h["epoch"] for h in (history if isinstance(history, list) else history["epochs"])] == list(range(1, 13))


BLOCKING_LOADER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    import torch
    from fvc_core.training.data import ClipSource, Key, make_loader

    class Stuck:
        # A decoder that never returns (a hung network mount, a pathological file).
        def read_video(self, path, *, augment, seed):
            Path(sys.argv[1], str(os.getpid())).touch()
            while True:
                time.sleep(1)

    loader, sampler = make_loader(ClipSource(Stuck(), ["a", "b", "c", "d"], [0, 1, 0, 1]), batch_size=1,
                                  num_workers=2, prefetch_factor=1, seed=0, pin_memory=False)
    sampler.keys = [Key(row, False, 0) for row in range(4)]
    next(iter(loader))
""")


def test_dataloader_workers_die_with_a_killed_training_process(tmp_path):
    markers = tmp_path / "reading"
    markers.mkdir()
    parent = subprocess.Popen([sys.executable, "-c", BLOCKING_LOADER, str(markers)], env=ENV,
                              start_new_session=True)
    deadline = time.monotonic() + DEADLINE_S
    while len(list(markers.iterdir())) < 2:  # both workers are inside read_video
        assert parent.poll() is None, "the loader script ended early"
        assert time.monotonic() < deadline, "the workers never started reading"
        time.sleep(0.02)
    workers = {int(p.name) for p in markers.iterdir()}
    parent.send_signal(signal.SIGKILL)  # no cleanup at all: the kernel has to tell them
    parent.wait()
    try:
        wait_until_gone(workers, "DataLoader workers of a SIGKILLed process")
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
