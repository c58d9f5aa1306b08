"""Two attempts of one fold never train it at once: the second waits on the fold's lock until the
first ends, and a SIGKILLed holder frees it at once (the kernel drops a dead process's record locks)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from fvc_core.executors import FoldTask

from .tasks import wait_for

# Takes the fold's lock, says so (or says it is waiting), holds it until RELEASE appears.
HOLD = """
import sys, time
from pathlib import Path
from fvc_core.executors import FoldTask
from fvc_core.fold_worker import fold_lock
run_dir, name = sys.argv[1], sys.argv[2]
Path(run_dir, name + ".trying").touch()
with fold_lock(FoldTask(config={}, run_dir=run_dir, fold=3, repeat=1)):
    Path(run_dir, name + ".holds").touch()
    while not Path(run_dir, name + ".release").exists():
        time.sleep(0.02)
"""


def attempt(run_dir: Path, name: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir), name])


def blocked_on_a_lock(pid: int) -> bool:
    # /proc/locks lists a process waiting for a POSIX lock on a line starting with "->".
    return any(line.split()[1:3] == ["->", "POSIX"] and line.split()[5] == str(pid)
               for line in Path("/proc/locks").read_text().splitlines() if len(line.split()) > 5)


def wait_until(condition, what: str) -> None:
    import time

    end = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < end, what
        time.sleep(0.02)


def test_a_second_attempt_waits_for_the_first_to_end(tmp_path):
    first = attempt(tmp_path, "first")
    wait_for(tmp_path / "first.holds", "the first attempt to take the lock")
    second = attempt(tmp_path, "second")
    try:
        wait_until(lambda: blocked_on_a_lock(second.pid), "the second attempt to wait on the fold's lock")
        assert not (tmp_path / "second.holds").exists()
        (tmp_path / "first.release").touch()
        assert first.wait(60) == 0
        wait_for(tmp_path / "second.holds", "the second attempt to take the lock once the first ended")
        (tmp_path / "second.release").touch()
        assert second.wait(60) == 0
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.kill()
    assert (tmp_path / ".fold-locks" / "repeat_1_fold_3.lock").is_file()


def test_a_killed_holder_does_not_block_the_retry(tmp_path):
    first = attempt(tmp_path, "first")
    wait_for(tmp_path / "first.holds", "the first attempt to take the lock")
    second = attempt(tmp_path, "second")
    try:
        wait_until(lambda: blocked_on_a_lock(second.pid), "the retry to wait on the fold's lock")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(60)
        wait_for(tmp_path / "second.holds", "the retry to take the lock of the killed attempt")
        (tmp_path / "second.release").touch()
        assert second.wait(60) == 0
    finally:
        for p in (first, second):
            if p.poll() is None:
                p.kill()


def test_the_lock_is_not_a_file_of_a_fold_folder(tmp_path):
    # The runner replaces a run that trained nothing by looking for files in fold_*/: a lock is not one.
    from fvc_core.fold_worker import fold_lock

    with fold_lock(FoldTask(config={}, run_dir=str(tmp_path), fold=0)):
        pass
    assert not list(tmp_path.glob("fold_*/*"))
