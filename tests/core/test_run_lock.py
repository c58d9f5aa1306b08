"""The run folder's lock belongs to the run's process alone: forked children never hold it, a dead
process is never named as its holder."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from fvc_core.errors import UserError
from fvc_core.runner import run_folder_lock

# Takes the lock, forks a child that lives on (as a DataLoader worker would), then waits to be killed.
HOLDER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from fvc_core.runner import run_folder_lock

    out, child_pid_file = Path(sys.argv[1]), Path(sys.argv[2])
    with run_folder_lock(out, "m"):
        child = os.fork()
        if child == 0:
            time.sleep(600)
            os._exit(0)
        child_pid_file.write_text(str(child))
        print("locked", flush=True)
        time.sleep(600)
""")


def wait_for_line(proc: subprocess.Popen, line: str) -> None:
    deadline = time.monotonic() + 60
    while proc.stdout.readline().strip() != line:
        assert proc.poll() is None and time.monotonic() < deadline, f"never printed {line!r}"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_after_a_sigkill_the_lock_is_free_while_forked_children_live_on(tmp_path):
    child_pid_file = tmp_path / "child.pid"
    parent = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "out"), str(child_pid_file)],
                              stdout=subprocess.PIPE, text=True)
    child = None
    try:
        wait_for_line(parent, "locked")
        child = int(child_pid_file.read_text())
        with pytest.raises(UserError, match=f"in use by another fvc run \\(pid {parent.pid} on "):
            with run_folder_lock(tmp_path / "out", "m"):
                pass
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert alive(child)  # the forked child outlives its parent, still holding the open lock file
        # A scheduler's immediate retry: the lock is free at once, the child notwithstanding.
        with run_folder_lock(tmp_path / "out", "m"):
            assert (tmp_path / "out" / ".m.lock").read_text().startswith(f"pid {os.getpid()} on ")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if child is not None and alive(child):
            os.kill(child, signal.SIGKILL)


def test_a_refusal_never_names_a_dead_process(tmp_path):
    """The lock is held, but its file still names an earlier holder that is gone (the moment between
    taking the lock and writing its line): the refusal does not name that dead pid."""
    out = tmp_path / "out"
    out.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock = out / ".m.lock"
    import socket

    lock.write_text(f"pid {gone.pid} on {socket.gethostname()}, since earlier\n")
    # Holds the record lock without writing its line.
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, time
        handle = open({str(lock)!r}, "a+")
        fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("locked", flush=True)
        time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        wait_for_line(holder, "locked")
        with pytest.raises(UserError) as refused:
            with run_folder_lock(out, "m"):
                pass
        assert f"pid {gone.pid}" not in str(refused.value)
        assert "in use by another fvc run (another process)" in str(refused.value)
    finally:
        holder.kill()
        holder.wait()
