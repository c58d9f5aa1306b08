"""Background trackers: one child process per run builds and calls them, fed the run's events in order.

Their imports (mlflow alone takes over a second), store access, plots and uploads then overlap
training, and the training process never imports their libraries. The run waits for them only
at its end, to finish what they were sent. The child is a fresh interpreter: a forked one would
inherit torch's and the DataLoader's state, and a thread in the training process would compete
for its interpreter lock and be copied half-way by the DataLoader's forks.

If the training process dies without a word (SIGKILL, out of memory), the child still finishes
what it received, then reports the run as failed with the error ``killed``. It holds a lock in the
run folder from before the first event until it exits, so a resumed run's trackers start only
after those of the attempt it resumes are done: no two of them write one run at once.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

# Standard library only at import: the child takes the run folder's lock before anything slow loads.
if TYPE_CHECKING:
    from fvc_core.tracking.events import FoldResult, RunInfo, RunSummary, Tracker

LOCK_FILE = Path("tracking") / "background.lock"
# Say why the run has not returned yet when the trackers take this long to finish (a slow server).
WAIT_NOTICE_S = 3.0
# How often the child checks that the training process is still there when no event comes.
PARENT_CHECK_S = 1.0


def background_spec(factory: Callable[[Any], Tracker], config: Any) -> bytes | None:
    """The factory and config as the child receives them; None if they cannot cross (a lambda)."""
    try:
        return pickle.dumps((factory, config))
    except Exception:
        return None


class TrackerHost:
    """The training process's side: sends events to the child, shows its warnings, waits at the end.

    It answers the Tracker methods, and never raises: a child that dies is one warning.
    """

    def __init__(self, specs: list[tuple[str, bytes]], warn: Callable[[str], None],
                 note: Callable[[str], None] = print):
        self.names = ", ".join(repr(name) for name, _ in specs)  # as the messages show them
        self._specs = specs
        self._warn = warn
        self._note = note
        self._process: Any = None
        self._conn: Any = None
        self._sock: socket.socket | None = None
        self._outbox = bytearray()  # framed events the child has not taken yet
        self._ready = False

    def start(self, run_dir: Path) -> None:
        ours, theirs = socket.socketpair()
        # A fresh interpreter with this one's import path (the plugins it can import, the child can:
        # test folders, PYTHONPATH...). Not multiprocessing's spawn: that re-imports the caller's
        # __main__, which would rerun the experiment of a script without a `__main__` guard.
        boot = f"import sys; sys.path[:] = {sys.path!r}; from fvc_core.tracking.background import main; main()"
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", boot, str(theirs.fileno()), str(run_dir / LOCK_FILE)],
                pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL)
        except OSError as exc:
            ours.close()
            self._warn(f"trackers {self.names} could not start: {exc}; running without them")
            return
        finally:
            theirs.close()
        # Events go out through a duplicate of the socket, written without blocking: a tracker that
        # falls behind leaves them queued here, in memory, never the training loop waiting on it.
        self._sock = socket.socket(fileno=os.dup(ours.fileno()))
        self._conn = Connection(ours.detach())
        self._send("setup", self._specs)

    def _lost(self) -> None:
        if self._conn is None:
            return
        self._conn = None
        code = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = self._process.wait(timeout=2)  # its end of the socket closes as it exits
        self._warn(f"trackers {self.names} stopped: their process ended "
                   f"(exit code {code}); training and local outputs go on")

    def _receive(self, until: str | None = None, notice: str = "") -> None:
        """Show what the child said; with ``until``, wait for that answer."""
        started = time.monotonic()
        noticed = False
        while self._conn is not None:
            try:
                if not self._conn.poll(0.0 if until is None else 0.2):
                    if until is None:
                        return
                    if self._process.poll() is not None and not self._conn.poll(0.0):
                        self._lost()
                        return
                    if not noticed and time.monotonic() - started > WAIT_NOTICE_S:
                        self._note(notice)
                        noticed = True
                    continue
                kind, *payload = self._conn.recv()
            except (EOFError, OSError):
                self._lost()
                return
            if kind == "warning":
                self._warn(payload[0])
            elif kind == until:
                return

    def _send(self, *message: Any) -> None:
        if self._conn is None:
            return
        if not self._ready and message[0] != "setup":
            # Before the first event, the child holds the run folder's lock.
            self._receive("ready", "waiting for the trackers of an earlier attempt of this run to finish")
            self._ready = True
        self._receive()
        self._outbox += _frame(message)
        self._push(wait=False)

    def _push(self, *, wait: bool) -> None:
        """Hand the child what it can take now; with ``wait``, all of it."""
        while self._outbox and self._conn is not None:
            try:
                sent = self._sock.send(self._outbox, 0 if wait else _DONT_WAIT)
            except BlockingIOError:
                return
            except OSError:
                self._lost()
                return
            del self._outbox[:sent]

    def start_run(self, run: RunInfo) -> None:
        self._send("start_run", run)

    def log_epoch(self, fold: int, epoch: int, metrics: dict[str, float], step: int) -> None:
        self._send("log_epoch", fold, epoch, metrics, step)

    def end_fold(self, result: FoldResult) -> None:
        self._send("end_fold", result)

    def end_run(self, summary: RunSummary) -> None:
        self._send("end_run", summary)

    def fail_run(self, run: RunInfo, error: str) -> None:
        self._send("fail_run", run, error)

    def log_evaluation(self, run: RunInfo, evaluation: Any) -> None:
        self._send("log_evaluation", run, evaluation)

    def close(self) -> None:
        if self._process is None:
            return
        self._send("close")
        try:
            self._push(wait=True)
            self._receive("closed", f"waiting for trackers {self.names} to finish (Ctrl-C stops them)")
        except KeyboardInterrupt:
            # Ctrl-C while waiting: stop them now (SIGKILL: the child ignores SIGTERM, see main).
            # What they missed, they catch up on from the run's files the next time the same
            # `fvc run` ends with them on.
            self._process.kill()
            self._note(f"trackers {self.names} stopped before they finished; run the same command again "
                       "to let them catch up")
            self._conn = self._process = None
            raise
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._sock is not None:
            self._sock.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass  # done with us, still tearing down: it ends on its own
        self._process = None


# Without blocking where the platform can (Linux, macOS); elsewhere a send may wait for the child.
_DONT_WAIT = getattr(socket, "MSG_DONTWAIT", 0)


def _frame(message: tuple[Any, ...]) -> bytes:
    """A message as multiprocessing's Connection.recv reads it: a length, then the pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    size = struct.pack("!i", len(data)) if len(data) <= 0x7FFFFFFF else struct.pack("!iQ", -1, len(data))
    return size + data


def main() -> None:
    """The child: ``sys.argv[1:]`` are the socket's file descriptor and the lock file."""
    # Ctrl-C, and a scheduler's SIGTERM to the whole process group, reach this process too; the
    # training process decides what they mean, says so, and sends what is left to record. Should it
    # die instead, this process notices (its parent changes) and records the run as killed.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    conn = Connection(int(sys.argv[1]))
    _, specs = conn.recv()
    serve(conn, specs, sys.argv[2])


def serve(conn: Connection, specs: list[tuple[str, bytes]], lock_path: str) -> None:
    """Take the run folder's lock, build the trackers, call them with each event until told to stop."""
    parent = os.getppid()
    lock = _lock(Path(lock_path))

    def say(*message: Any) -> None:
        with contextlib.suppress(OSError, ValueError):
            conn.send(message)

    say("ready")
    # Tracking yields to training: the child takes the CPU time training leaves idle, and at the run's
    # end, when training is done, all of it.
    with contextlib.suppress(OSError, AttributeError):
        os.nice(10)
    from fvc_core.tracking.events import KILLED
    from fvc_core.tracking.tracker_set import TrackerSet, could_not_start
    built = []
    for name, spec in specs:
        try:
            factory, config = pickle.loads(spec)
            built.append((name, factory(config), False))
        except Exception as exc:
            say("warning", could_not_start(name, exc))
    trackers = TrackerSet(built, warn=lambda message: say("warning", message))
    run: RunInfo | None = None
    try:
        while True:
            if not conn.poll(PARENT_CHECK_S):
                # DataLoader workers forked from the parent hold our pipe open: a dead parent shows as a new ppid.
                if os.getppid() != parent:
                    break
                continue
            try:
                method, *args = conn.recv()
            except (EOFError, OSError):
                break
            if method == "close":
                # Everything is written. A normal exit would spend about a second here tearing down
                # mlflow, sqlalchemy and matplotlib, with the training process waiting on it.
                lock.close()
                say("closed")
                for stream in (sys.stdout, sys.stderr):
                    with contextlib.suppress(Exception):
                        stream.flush()
                os._exit(0)
            if method == "start_run":
                run = args[0]
            elif method in ("end_run", "fail_run"):
                run = None
            getattr(trackers, method)(*args)
        # The training process ended without ending the run: record it as killed rather than running.
        if run is not None:
            trackers.fail_run(run, KILLED)
    finally:
        lock.close()


def _lock(path: Path):
    """An exclusive lock on ``path``, held until the returned file is closed (or the process ends)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a")  # noqa: SIM115 - held for the child's life
    try:
        import fcntl
    except ImportError:  # Windows: no flock; resumed runs there rely on timing
        return handle
    fcntl.flock(handle, fcntl.LOCK_EX)
    return handle
