"""A data-parallel fold whose ranks Ray places, one actor per rank, on any node (``executor.rank_placement``).

With ``rank_placement: worker`` (the default) a fold of ``trainer.workers_per_fold`` ranks is one Ray
task, and the core starts its ranks as processes of that worker's machine. With ``pack``, ``spread``,
``strict_pack`` or ``strict_spread`` the driver makes a Ray placement group of one bundle per rank
(Ray's strategy of that name; ``strict_spread``: every rank on a node of its own) and runs
:func:`placed_ranks_fold` as the fold's task: it starts one :class:`Rank` actor in each bundle, rank 0
opens the rendezvous on its own node's address (a free port its system picks), the others join it
there, and the fold's result is rank 0's. A rank whose process or node dies ends the others and the
fold in one line; the driver removes the placement group when the fold ends, however it ends, which
kills any rank still in it.

Resources: ``executor.num_cpus`` and ``num_gpus`` stay what one fold reserves, as with ``worker``; each
rank's bundle holds its share (``num_cpus / workers_per_fold`` CPUs, ``num_gpus / workers_per_fold``
GPUs, which must be whole: nccl needs a GPU of its own per rank).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any

import ray

from fvc_core.contract import ForwardingTracker, UserError, one_line

# How long the fold's task waits for its placement group before it says, once, that it is waiting.
PLACEMENT_NOTE_S = 30.0
# After a rank fails, how long to wait for a peer's death to be known: a rank killed outright makes the
# others fail at their next collective ("Connection closed by peer"), and the death is the cause to name.
DEATH_GRACE_S = 5.0


class RankFailed(UserError):
    """A rank of a fold placed by Ray died (its process, or its node); finished epochs are kept."""


def rank_bundle(num_cpus: float, num_gpus: float, world: int, placement: str, local: bool) -> dict[str, float]:
    """One rank's bundle: its share of what a fold reserves. One line naming the keys when no placement
    could work: a fraction of a GPU per rank, or ranks on nodes of their own in a Ray instance of one node."""
    if num_gpus and (num_gpus % world or num_gpus < world):
        raise UserError(f"executor.num_gpus: {num_gpus:g} GPUs for a fold of {world} ranks placed by "
                        f"executor.rank_placement={placement} is not a whole GPU per rank; set executor.num_gpus to "
                        f"a multiple of trainer.workers_per_fold ({world})")
    if local and placement == "strict_spread":
        raise UserError(f"executor.rank_placement: strict_spread puts each of the fold's {world} ranks on a node of "
                        "its own, and the Ray instance started on this machine has one node; use pack (or worker), "
                        "or give executor.address of a cluster")
    bundle = {"CPU": num_cpus / world}
    if num_gpus:
        bundle["GPU"] = num_gpus / world
    return bundle


@ray.remote(max_restarts=0)
class Rank:
    """One rank of a fold, in the bundle of the fold's placement group that Ray gave it."""

    def __init__(self) -> None:
        self._store: Any = None
        if threading.current_thread() is threading.main_thread():
            # Ctrl-C in the terminal of a Ray instance started there reaches its workers too: the driver
            # ends the fold (its placement group goes) and says what happened, once.
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    def where(self) -> tuple[str, str, int]:
        """(Ray node id, node address, pid): where this rank runs."""
        import os

        return ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address(), os.getpid()

    def rendezvous(self) -> tuple[str, int]:
        """Rank 0 only: open the store the ranks meet at on this node's address; held while the actor lives."""
        from fvc_core.contract import open_rendezvous

        host = ray.util.get_node_ip_address()
        self._store = open_rendezvous(host)
        return host, int(self._store.port)

    def train(self, task: Any, rank: int, host: str, port: int, sink: Any) -> Any:
        from fvc_core.contract import run_fold_rank

        events = ForwardingTracker(lambda event: ray.get(sink.put.remote(event)))
        return run_fold_rank(task, rank, host, port, events)


def placed_ranks_fold(task: Any, sink: Any, group: Any, bundle: dict[str, float], placement: str) -> Any:
    """The fold's Ray task (no CPU of its own): a :class:`Rank` actor in each bundle of ``group``, rank 0's
    rendezvous, every rank trained, rank 0's result returned. The actors are this task's: if its worker
    dies they die with it, and Ray's retry of the task starts new ones, which resume from the fold's
    last checkpoint."""
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    world = task.workers
    waited = ray.wait([group.ready()], timeout=PLACEMENT_NOTE_S)[0]
    if not waited:
        ray.get(sink.put.remote(("note", (
            f"{task.label}: waiting for the cluster to place {world} ranks ({placement}, "
            f"{', '.join(f'{v:g} {k}' for k, v in bundle.items())} each)",))))
    ranks = [Rank.options(num_cpus=bundle["CPU"], num_gpus=bundle.get("GPU", 0.0),
                          scheduling_strategy=PlacementGroupSchedulingStrategy(
                              group, placement_group_bundle_index=r)).remote() for r in range(world)]
    try:
        places = ray.get([rank.where.remote() for rank in ranks])
        # Where each rank runs, in the run's log: the user sees the placement, a test can check it.
        ray.get(sink.put.remote(("note", (f"{task.label}: {world} data-parallel ranks placed by {placement}: " +
                                          ", ".join(f"rank {r} on node {ip} (id {node[:12]}, pid {pid})"
                                                    for r, (node, ip, pid) in enumerate(places)),))))
        host, port = ray.get(ranks[0].rendezvous.remote())
        refs = {rank.train.remote(task, r, host, port, sink): r for r, rank in enumerate(ranks)}
        result = None
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                outcome = _outcome(ref)
                if isinstance(outcome, BaseException):
                    raise _first_cause(task, refs, ref, outcome, places, pending) from None
                if refs[ref] == 0:
                    result = outcome
        return result
    finally:
        for rank in ranks:  # at once: a rank waiting at a collective for a failed peer would wait for good
            with contextlib.suppress(Exception):
                ray.kill(rank)


def _outcome(ref: Any) -> Any:
    """A rank's result, or the exception that ended it (its own error, or its actor's death)."""
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        return exc.cause if isinstance(exc.cause, BaseException) else RuntimeError(one_line(exc, with_type=False))
    except ray.exceptions.RayActorError as exc:
        return exc


def _first_cause(task: Any, refs: dict[Any, int], failed: Any, outcome: BaseException,
                 places: list[tuple[str, str, int]], pending: list[Any]) -> BaseException:
    """What to raise for the fold: a rank that died (the others' errors follow from it), else the first
    rank's own error, as that rank raised it."""
    world = task.workers
    deaths = {refs[failed]: outcome} if isinstance(outcome, ray.exceptions.RayActorError) else {}
    if not deaths and pending:
        for ref in ray.wait(pending, num_returns=len(pending), timeout=DEATH_GRACE_S)[0]:
            other = _outcome(ref)
            if isinstance(other, ray.exceptions.RayActorError):
                deaths[refs[ref]] = other
    if not deaths:
        return outcome
    rank = min(deaths)
    _, ip, pid = places[rank]
    return RankFailed(f"{task.label}: rank {rank} of {world} data-parallel workers died (its Ray actor, pid {pid} on "
                      f"node {ip}: killed, out of memory, or its node lost); the other ranks were stopped, finished "
                      "epochs are kept: run the same command again to resume")
