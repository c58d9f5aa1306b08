"""``fvc prepare`` under real signals: its spawned workers and multiprocessing's resource tracker never
outlive it, SIGTERM and Ctrl-C end it with one line, and what it left is resumable.

The signal goes out once the first copy is written, while the others are still being made. Every
wait is on an event (a file appears, a process ends), with a generous deadline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tests.core.test_signals import alive, group_of, wait_until_gone
from tests.loaders.videos import make_video

VIDEOS = 24
FVC = [sys.executable, "-m", "fvc_core.cli"]
ENV = {**os.environ, "CI": "1"}

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("orphans") / "data"
    data.mkdir()
    names = [f"v{i:02d}.mp4" for i in range(VIDEOS)]
    for name in names:
        make_video(data / name, frames=48, width=96, height=64)
    path = data / "metadata.parquet"
    pl.DataFrame({"video_path": names, "label": ["real", "fake"] * (VIDEOS // 2)}).write_parquet(path)
    return path


def start(table: Path, out: Path) -> subprocess.Popen:
    """``fvc prepare`` with two workers, in its own process group, once it has written a copy."""
    run = subprocess.Popen([*FVC, "prepare", str(table), "-o", str(out), "--size", "32", "-j", "2"], env=ENV,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while not any(out.glob("v*.mp4")):
        assert run.poll() is None, f"prepare ended before its first copy: {run.communicate()}"
        assert time.monotonic() < deadline, "prepare never wrote a copy"
        time.sleep(0.01)
    return run


def workers_of(run: subprocess.Popen) -> set[int]:
    found = set()
    for pid in group_of(run.pid) - {run.pid}:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"multiprocessing" in f.read():  # the pool's workers and the resource tracker
                found.add(pid)
    return found


def test_a_sigkilled_prepare_leaves_no_worker_or_resource_tracker(table, tmp_path):
    run = start(table, tmp_path / "out")
    family = workers_of(run)
    assert len(family) == 3, family  # two workers, one resource tracker
    # Held still, so the kill lands while they still have work: nothing of what follows is a race.
    for pid in family:
        os.kill(pid, signal.SIGSTOP)
    try:
        run.send_signal(signal.SIGKILL)  # as the out-of-memory killer or a scheduler's hard kill
        run.wait()  # not communicate(): the workers hold its output pipes while they live
        for pid in family:
            os.kill(pid, signal.SIGCONT)
        wait_until_gone(family, "workers of a SIGKILLed fvc prepare")
        run.communicate()
    finally:
        for pid in family:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(("signum", "code", "line"), [
    (signal.SIGTERM, 143, "terminated (SIGTERM): progress so far is saved; run the same command again to resume"),
    (signal.SIGINT, 130, "interrupted: progress so far is saved; run the same command again to resume"),
])
def test_a_signal_to_the_process_group_stops_prepare_in_one_line_and_it_resumes(table, tmp_path, signum, code,
                                                                                 line):
    out = tmp_path / "out"
    run = start(table, out)
    family = group_of(run.pid)
    os.killpg(run.pid, signum)  # Slurm's SIGTERM, a terminal's Ctrl-C: every process of the group
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == code, stdout + stderr
    assert stderr.strip().splitlines() == [line]  # no traceback from any worker
    wait_until_gone(family, "processes of a stopped fvc prepare")
    copies = {p.name for p in out.glob("v*.mp4")}
    assert copies and not list(out.glob(".*tmp*"))  # the copies under way were removed, not left half-written

    again = subprocess.run([*FVC, "prepare", str(table), "-o", str(out), "--size", "32", "-j", "2"], env=ENV,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{VIDEOS - len(copies)} videos scaled, {len(copies)} already done, 0 bad" in again.stdout
    assert len(pl.read_parquet(out / "scaled_metadata.parquet")) == VIDEOS
