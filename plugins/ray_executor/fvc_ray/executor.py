"""The ``ray`` executor: each fold a Ray task, as many side by side as the cluster's resources allow;
``map`` runs per-item work the same way (``fvc prepare --executor ray``: a Ray task per video). A
data-parallel fold under ``rank_placement`` other than ``worker`` is a placement group the driver makes
and removes, and a Ray task that places one actor per rank in it (``fvc_ray.placed_ranks``).

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
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import ray

from fvc_core.contract import FoldFunction, FoldTask, ForwardingTracker, Terminated, UserError, deliver, one_line
from fvc_ray.config import RayExecutorConfig
from fvc_ray.placed_ranks import placed_ranks_fold, rank_bundle

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


@contextlib.contextmanager
def loopback_only(local: bool) -> Iterator[None]:
    """While a Ray instance is started here (``local``): every server of it on 127.0.0.1 only.

    A run's own Ray instance is nobody else's to reach, and Ray's servers run whatever code a caller
    sends. ``_node_ip_address="127.0.0.1"`` alone does not do it: on Linux ray.init replaces a loopback
    address by the machine's outward one (so other nodes could join), and its GCS server, raylet and
    workers then listen on every interface, its runtime-env agent on the outward address. Ray keeps
    the loopback address, and its servers then bind to it, where "clusters" are off (its macOS and
    Windows default, ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``): off in this process while ray.init runs,
    and in the processes it starts (they read the variable when they import Ray). A driver
    connecting to a cluster elsewhere keeps Ray's rule: that cluster must reach it."""
    if not local:
        yield
        return
    from ray._private import ray_constants

    saved_flag, saved_env = ray_constants.ENABLE_RAY_CLUSTER, os.environ.get(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR)
    ray_constants.ENABLE_RAY_CLUSTER = False
    os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = "0"
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR, None)
        else:
            os.environ[ray_constants.ENABLE_RAY_CLUSTERS_ENV_VAR] = saved_env


class ClusterLost(UserError):
    """The cluster lost what a run needs (a node, a worker with no retries left): one line and exit 2,
    as the cluster's other failures (an address nobody answers, a fold that fits no node). Nothing
    is wrong with fvc or the run: its checkpoints are kept and the same command resumes it."""


def alive_nodes() -> dict[str, str]:
    """The cluster's live nodes, ``{node id: address}``; empty if the GCS does not say."""
    with contextlib.suppress(Exception):
        return {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
    return {}


def dead_since(nodes: dict[str, str]) -> str:
    """Which of ``nodes`` (alive when a run began) are dead now, with the reason Ray recorded
    ("dashboard_agent failed and raylet fate shares with it"); empty if none or the GCS does not say."""
    with contextlib.suppress(Exception):
        return ", ".join(f"{nodes[n['NodeID']]} ({(n.get('DeathReasonMessage') or 'no reason recorded').rstrip('.')})"
                         for n in ray.nodes() if n["NodeID"] in nodes and not n.get("Alive"))
    return ""


def execute(fn: FoldFunction, task: FoldTask, sink: Any) -> Any:
    """What runs in the Ray worker: ``fn(task, events)``, every event acknowledged by the sink."""
    events = ForwardingTracker(lambda event: ray.get(sink.put.remote(event)))
    return fn(task, events)


def call_item(fn: Callable[[Any, Any], Any], state: Any, item: Any) -> Any:
    """What runs in the Ray worker for one item of ``RayExecutor.map`` (``state`` arrives resolved).

    Deaf to SIGINT while it runs: a Ctrl-C in the terminal reaches the workers of a Ray instance started
    there (one process group), and a task interrupted by it while the driver cancels it made Ray's driver
    abort ("Tried to complete task that was not pending", exit 1, about 1 in 5 tries). The items end with
    the driver's connection (``RayExecutor.map``)."""
    # The item's CPUs are those Ray reserved for it (it sets OMP_NUM_THREADS to them); OpenCV's own
    # pool would take every core of the node, and the items running beside it fight over them.
    cpus = os.environ.get("OMP_NUM_THREADS", "1")
    os.environ["OPENCV_FOR_THREADS_NUM"] = cpus
    if "cv2" in sys.modules:
        sys.modules["cv2"].setNumThreads(int(cpus) if cpus.isdigit() else 1)
    if threading.current_thread() is not threading.main_thread():
        return fn(state, item)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return fn(state, item)
    finally:
        signal.signal(signal.SIGINT, previous)


class RayExecutor:
    """Shareable: ``run`` may be called from several threads at once (a sweep's points side by side);
    ``max_concurrent`` then bounds the folds of all of them together."""

    in_process = False

    def __init__(self, config: RayExecutorConfig | None = None):
        self.config = config or RayExecutorConfig()
        self._ours = False  # whether start() connected this process (and close() disconnects it)
        self._local = False  # whether start() started the Ray instance, here
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
            kwargs["_node_ip_address"] = "127.0.0.1"
        else:
            address = self._reachable(address)
        # ray.init installs its own SIGTERM handler; fvc's (state saved, status recorded) stays in force.
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            with loopback_only(address == "local"):
                ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise UserError(f"executor.address: cannot use the Ray cluster at {address}: "
                            f"{one_line(exc, with_type=False)}") from None
        finally:
            for sig, handler in handlers.items():
                if handler is not None:
                    signal.signal(sig, handler)
        self._ours = True
        self._local = address == "local"
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
        placed = [task for task in tasks if self._placed(task)]
        for task in placed[:1]:
            rank_bundle(cfg.num_cpus, cfg.num_gpus, task.workers, cfg.rank_placement, self._local)  # its one line
        nodes = alive_nodes()
        remote = ray.remote(execute)
        options = {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus, "max_retries": cfg.max_retries,
                   "retry_exceptions": False}
        sink = EventSink.remote()
        waiting = list(tasks)
        running: dict[Any, FoldTask] = {}
        groups: dict[Any, Any] = {}  # a placed fold's task -> its placement group, removed when it ends
        try:
            while waiting or running:
                # A slot is taken only when free, never waited for: this loop must keep delivering
                # the events and results of the folds it has running.
                while waiting and self._take_slot():
                    task = waiting.pop(0)
                    try:
                        if self._placed(task):
                            ref, groups[task] = self._submit_placed(task, sink)
                        else:
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
                    task = running[ref]
                    self._remove_group(groups.pop(task, None))  # the fold's ranks are done, whatever the result
                    result = self._result(ref, task)  # raising, the fold is still among those that stopped
                    del running[ref]
                    self._give_slot()
                    yield task, result
        except ray.exceptions.RayError as exc:
            # What the cluster lost (the event sink's node, the driver's own raylet, a fold's worker
            # with no retries left), never a fold's own error (_result raises that as itself).
            raise self._lost(exc, nodes, [*running.values(), *waiting]) from None
        finally:
            # An error, Ctrl-C or a trainer that stopped iterating: the other folds stop too (each
            # resumes from its checkpoint on the next `fvc run`).
            for ref in running:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
                self._give_slot()
            # Removing a placement group kills the rank actors in it: no rank outlives its fold.
            for group in groups.values():
                self._remove_group(group)
            with contextlib.suppress(Exception):
                ray.kill(sink)

    def _placed(self, task: FoldTask) -> bool:
        """Whether this fold's ranks get a bundle each (``rank_placement``) rather than the fold's one worker."""
        return task.workers > 1 and self.config.rank_placement != "worker"

    def _submit_placed(self, task: FoldTask, sink: Any) -> tuple[Any, Any]:
        """A placement group of one bundle per rank, made by the driver (so that it goes when the driver
        removes it or leaves, however the fold ends), and the fold's Ray task, which places the ranks in
        it: the task holds no CPU of its own, Ray reruns it (``max_retries``) if its worker or node dies."""
        from ray.util.placement_group import placement_group

        cfg = self.config
        bundle = rank_bundle(cfg.num_cpus, cfg.num_gpus, task.workers, cfg.rank_placement, self._local)
        group = placement_group([dict(bundle) for _ in range(task.workers)], strategy=cfg.rank_placement.upper(),
                                name=f"fvc {task.label} ranks")
        try:
            ref = ray.remote(placed_ranks_fold).options(
                name=f"fvc {task.label}", num_cpus=0, num_gpus=0, max_retries=cfg.max_retries,
                retry_exceptions=False).remote(task, sink, group, bundle, cfg.rank_placement)
        except BaseException:
            self._remove_group(group)
            raise
        return ref, group

    @staticmethod
    def _remove_group(group: Any) -> None:
        if group is not None:
            from ray.util.placement_group import remove_placement_group

            with contextlib.suppress(Exception):
                remove_placement_group(group)

    def _lost(self, exc: BaseException, nodes: dict[str, str], tasks: Sequence[FoldTask]) -> ClusterLost:
        """One line for what the cluster lost: the node that died and why (Ray's own words, from the GCS),
        else the worker; which folds stopped; that the same command resumes them."""
        folds = ", ".join(task.label for task in tasks) or "the run"
        died = dead_since(nodes)
        if died and self._local:
            what = f"the Ray instance this run started on this machine died: its node {died}"
        elif died:
            what = f"Ray node {died} of the cluster at {self.address()} died and no other node finished its work"
        else:
            what = (f"a Ray worker was lost and {self.config.max_retries} retries did not make up for it "
                    f"({one_line(exc)})")
        return ClusterLost(f"{what}; {folds} stopped, finished epochs are kept: run the same command again "
                           "to resume")

    def _result(self, ref: Any, task: FoldTask) -> Any:
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, BaseException):
                raise cause from None  # the fold's own error, as the local executor would raise it
            raise RuntimeError(f"{task.label} failed in its Ray worker: {one_line(exc, with_type=False)}") from None

    # -- per-item work (fvc prepare's videos) -------------------------------------------------------
    def map(self, fn: Callable[[Any, Any], Any], state: Any, items: Sequence[Any], *,
            limit: int | None = None) -> Iterator[tuple[int, Any]]:
        """``(i, fn(state, items[i]))`` as each Ray task finishes (``fvc_core.contract.maps_items``):
        ``executor.num_cpus``/``num_gpus`` per item, ``max_retries`` for a worker or node lost; at most
        ``limit`` (and ``max_concurrent``) items at once, else about twice what the cluster holds queued,
        so a table of 100,000 videos is not 100,000 pending tasks. Closing the iterator, an error, Ctrl-C
        or SIGTERM submits no more; the items under way end when ``close()`` leaves the cluster (Ray kills
        a job's workers when its driver goes), or finish on their own."""
        if self._cancelled.is_set():
            raise Terminated()
        if not items:
            return
        cfg = self.config
        nodes = alive_nodes()
        bounds = [n for n in (limit, cfg.max_concurrent) if n]
        window = min(bounds) if bounds else 2 * self.capacity()
        remote = ray.remote(call_item)
        options = {"num_cpus": cfg.num_cpus, "num_gpus": cfg.num_gpus, "max_retries": cfg.max_retries,
                   "retry_exceptions": False}
        shared = ray.put(state)  # shipped once, not once per item
        waiting = deque(range(len(items)))
        running: dict[Any, int] = {}
        try:
            while waiting or running:
                while waiting and len(running) < window:
                    i = waiting.popleft()
                    running[remote.options(name=f"fvc item {i}", **options).remote(fn, shared, items[i])] = i
                ready, _ = ray.wait(list(running), num_returns=1, timeout=POLL_S)
                if self._cancelled.is_set():
                    raise Terminated()
                for ref in ready:
                    i = running.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayTaskError as exc:
                        cause = exc.cause
                        if isinstance(cause, BaseException):
                            raise cause from None  # the item's own error, as the local pool would raise it
                        raise RuntimeError(f"item {i} failed in its Ray worker: "
                                           f"{one_line(exc, with_type=False)}") from None
                    yield i, result
        except ray.exceptions.RayError as exc:
            died = dead_since(nodes)
            what = (f"Ray node {died} died" if died else
                    f"a Ray worker was lost and {cfg.max_retries} retries did not make up for it ({one_line(exc)})")
            raise ClusterLost(f"{what}; {len(running) + len(waiting)} items stopped, finished ones are kept: "
                              "run the same command again to resume") from None
        finally:
            # No ray.cancel of the items under way: Ray's driver aborts ("Tried to complete task that was not
            # pending", exit 1) when a force-cancel meets a task finishing at that moment, which short items
            # often do (a SIGTERM test: 1 of about 10). They end with the connection instead: close() (the
            # job's workers are killed when its driver leaves), at most a video later otherwise.
            pass
