"""The ``ray`` executor: each fold a Ray task, as many side by side as the cluster's resources allow.

Tracker events travel through one small actor per run (:class:`EventSink`): a task hands it each
event and waits for the acknowledgement before going on, so an epoch the task has logged is in
the driver's hands even if the worker is killed the next moment (the trainer logs an epoch after
checkpointing it, so a retry, which resumes after that checkpoint, never sends it twice). The
driver drains the sink while it waits for results and delivers the events to its trackers before
the result of the task that sent them. Returning the events with the result instead would lose the
epochs of an attempt that is killed, and show none until a fold ends (hours, on real data).
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import ray

from fvc_core.contract import FoldFunction, FoldTask, UserError, one_line
from fvc_core.errors import Terminated
from fvc_core.executors import ForwardingTracker, deliver
from fvc_ray.config import RayExecutorConfig

# How often the driver looks for new events while no fold has finished.
POLL_S = 0.5


@ray.remote(num_cpus=0, max_restarts=0)
class EventSink:
    """Holds the events tasks sent until the driver takes them; a synchronous actor handles calls
    from one caller in the order they were made."""

    def __init__(self) -> None:
        self.events: list[tuple[str, tuple[Any, ...]]] = []

    def put(self, event: tuple[str, tuple[Any, ...]]) -> None:
        self.events.append(event)

    def drain(self) -> list[tuple[str, tuple[Any, ...]]]:
        out, self.events = self.events, []
        return out


def execute(fn: FoldFunction, task: FoldTask, sink: Any) -> Any:
    """What runs in the Ray worker: ``fn(task, events)``, every event acknowledged by the sink."""
    events = ForwardingTracker(lambda event: ray.get(sink.put.remote(event)))
    return fn(task, events)


class RayExecutor:
    """Shareable: ``run`` may be called from several threads at once (a sweep's points side by side);
    ``max_concurrent`` then bounds the folds of all of them together."""

    in_process = False

    def __init__(self, config: RayExecutorConfig | None = None):
        self.config = config or RayExecutorConfig()
        self._ours = False  # whether start() connected this process (and close() disconnects it)
        self._slots = threading.BoundedSemaphore(self.config.max_concurrent) if self.config.max_concurrent else None
        self._cancelled = threading.Event()

    # -- connecting ------------------------------------------------------------------------------
    def address(self) -> str:
        """The address to use: the key, else $RAY_ADDRESS, else 'local' (a Ray started for this run)."""
        return self.config.address or os.environ.get("RAY_ADDRESS") or "local"

    def start(self) -> None:
        self._cancelled.clear()
        if ray.is_initialized():
            return  # a notebook or script that set Ray up itself: use its connection as it is
        address = self.address()
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if address == "local":
            # Bound to the loopback interface: a run's own Ray instance is nobody else's to reach.
            kwargs["_node_ip_address"] = "127.0.0.1"
        else:
            address = self._reachable(address)
        # ray.init installs its own SIGTERM handler; fvc's (state saved, status recorded) stays in force.
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"executor.address: cannot use the Ray cluster at {address}: "
                            f"{one_line(exc, with_type=False)}") from None
        finally:
            for sig, handler in handlers.items():
                if handler is not None:
                    signal.signal(sig, handler)
        self._ours = True
        if address == "local":
            self._check_fits()

    def _check_fits(self) -> None:
        """A fold asking for more than the Ray instance started here has would wait forever (no
        autoscaler will ever add a node): one line instead, before anything is written."""
        cfg = self.config
        have = ray.cluster_resources()
        for key, unit, wanted in (("num_cpus", "CPU", cfg.num_cpus), ("num_gpus", "GPU", cfg.num_gpus)):
            if wanted > have.get(unit, 0.0):
                self.close()
                raise UserError(f"executor.{key}: each fold asks for {wanted:g} {unit}s, but the Ray instance "
                                f"started on this machine has {have.get(unit, 0.0):g}; lower executor.{key}, or "
                                "give executor.address of a cluster that has them")

    def _reachable(self, address: str) -> str:
        """The host:port (or ray://host:port) to give ray.init, once something answers there: Ray
        itself retries an address nobody answers for minutes."""
        where = "executor.address" if self.config.address else "$RAY_ADDRESS"
        target = address
        if address.startswith("ray://"):
            try:
                import grpc  # noqa: F401 - Ray Client needs it, and says so only after a long wait
            except ImportError:
                raise UserError(f"{where}: {address} is a Ray Client address, which needs ray[client] "
                                "(pip install 'ray[client]'); or give the head's host:port") from None
            target = address[len("ray://"):]
        else:
            # What ray.init will dial: 'auto' found on this machine, and a loopback host replaced by this
            # machine's outward address (Ray's rule), so the probe below checks the address really used.
            from ray._private.services import canonicalize_bootstrap_address

            try:
                target = canonicalize_bootstrap_address(address) or ""
            except (ConnectionError, ValueError) as exc:
                if address != "auto":
                    raise UserError(f"{where}: {address!r} is not a Ray address (host:port, auto, "
                                    "ray://host:port or local)") from None
                raise UserError(f"{where}: auto: no Ray cluster found on this machine "
                                f"({one_line(exc, with_type=False)}); "
                                "start one with `ray start --head`, or give its host:port") from None
        host, sep, port = target.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise UserError(f"{where}: {address!r} is not a Ray address (host:port, auto, ray://host:port or local)")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=self.config.connect_timeout_s):
                pass
        except OSError as exc:
            why = "no answer" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__).lower()
            given = "" if target in (address, address[len("ray://"):]) else f" (Ray's address for {address})"
            raise UserError(f"{where}: no Ray cluster answers at {host}:{port}{given} ({why} within "
                            f"{self.config.connect_timeout_s:g} s); start it (`ray start --head`) or fix the "
                            "address") from None
        return address

    def close(self) -> None:
        if self._ours and ray.is_initialized():
            ray.shutdown()
        self._ours = False

    # -- sharing between runs ----------------------------------------------------------------------
    def capacity(self) -> int:
        """How many folds run at once: ``max_concurrent``, else what the cluster's CPUs (and GPUs,
        when a fold asks for some) hold now."""
        cfg = self.config
        if cfg.max_concurrent:
            return cfg.max_concurrent
        resources = ray.cluster_resources()
        fits = math.floor(resources.get("CPU", 1.0) / cfg.num_cpus)
        if cfg.num_gpus:
            fits = min(fits, math.floor(resources.get("GPU", 0.0) / cfg.num_gpus))
        return max(1, fits)

    def cancel(self) -> None:
        """Every ``run`` under way, in any thread, stops within a poll: its folds are cancelled (each
        resumes from its checkpoint next time) and it raises Terminated in its caller."""
        self._cancelled.set()

    def _take_slot(self) -> bool:
        return self._slots is None or self._slots.acquire(blocking=False)

    def _give_slot(self) -> None:
        if self._slots is not None:
            self._slots.release()

    # -- running ---------------------------------------------------------------------------------
    def run(self, tasks: Sequence[FoldTask], fn: FoldFunction, events: Any) -> Iterator[tuple[FoldTask, Any]]:
        if self._cancelled.is_set():
            raise Terminated()
        if not tasks:
            return
        cfg = self.config
        remote = ray.remote(execute)
        options = {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus, "max_retries": cfg.max_retries,
                   "retry_exceptions": False}
        sink = EventSink.remote()
        waiting = list(tasks)
        running: dict[Any, FoldTask] = {}
        try:
            while waiting or running:
                # A slot is taken only when free, never waited for: this loop must keep delivering
                # the events and results of the folds it has running.
                while waiting and self._take_slot():
                    task = waiting.pop(0)
                    try:
                        ref = remote.options(name=f"fvc {task.label}", **options).remote(fn, task, sink)
                    except BaseException:
                        self._give_slot()
                        raise
                    running[ref] = task
                if running:
                    ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
                else:  # every slot is another run's (a sweep's other points): wait for one to free
                    ready = []
                    time.sleep(POLL_S)
                if self._cancelled.is_set():
                    raise Terminated()
                # Before any result: a task's events were all acknowledged before it returned.
                for event in ray.get(sink.drain.remote()):
                    deliver(events, event)
                for ref in ready:
                    task = running.pop(ref)
                    self._give_slot()
                    yield task, self._result(ref, task)
        finally:
            # An error, Ctrl-C or a trainer that stopped iterating: the other folds stop too (each
            # resumes from its checkpoint on the next `fvc run`).
            for ref in running:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
                self._give_slot()
            with contextlib.suppress(Exception):
                ray.kill(sink)

    def _result(self, ref: Any, task: FoldTask) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, BaseException):
                raise cause from None  # the fold's own error, as the local executor would raise it
            raise RuntimeError(f"{task.label} failed in its Ray worker: {one_line(exc, with_type=False)}") from None
        except ray.exceptions.RayError as exc:
            raise RuntimeError(f"{task.label}: its Ray worker or node was lost and {self.config.max_retries} "
                               f"retries did not finish it ({one_line(exc)}); "
                               "run the same command again to resume") from None
