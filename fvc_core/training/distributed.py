"""One fold trained data-parallel on ``trainer.workers_per_fold`` processes (torch.distributed).

Two halves:

- the launcher (:func:`train_fold_on_ranks`), run where the fold would have run (``fvc run``'s
  process under the local executor, the Ray worker under ``ray``): it opens the rendezvous (a
  ``TCPStore`` on 127.0.0.1 it holds itself, so no port can be taken in between), spawns one process
  per rank with ``torch.multiprocessing``, forwards rank 0's tracker events to the fold's own
  ``events`` while it waits, and ends the others as soon as one fails;
- the rank side (:class:`Ranks`), what ``FoldTraining`` asks: which share of an epoch's batches
  is this rank's, the gradient all-reduce at each optimiser step, the gathering of a sharded
  validation pass, rank 0's decisions broadcast to the others.

Why not the ``DistributedDataParallel`` wrapper: DDP all-reduces inside ``backward`` and so needs
every rank to run the same number of backward passes. The trainer's rules break that: an epoch's
last optimiser step may cover fewer batches than ranks, and a batch whose videos are all unreadable
(``on_bad_video: skip``) has no backward at all. Here each rank accumulates its batches of a step
locally (what DDP's ``no_sync`` does), and the step all-reduces the summed gradients once, as one
flat buffer, on every rank: the same collective DDP issues, minus its overlap with the last
micro-batch's backward. The arithmetic is then exactly the single-process trainer's: the step's
gradient is the mean over the batches it covers, whichever rank ran them.

Schedule: every rank draws the same epoch permutation (seed, fold, epoch); it is cut into batches of
``batch_size`` as one process would; optimiser step g covers global batches
``[g*A*N, (g+1)*A*N)`` (A = grad_accum, N = ranks), and global batch j goes to rank ``j % N``. So N
ranks with batch B and accumulation A take the very steps of one process with batch B and
accumulation A*N (same batches, same mean): the global batch is batch_size x grad_accum x workers.
"""

from __future__ import annotations

import datetime
import os
import queue as queue_module
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from fvc_core.errors import UserError

# How long a rank waits for the others at a collective before it gives up: a backstop only (the
# launcher ends every rank as soon as one dies); rank 0 alone scores the test part at the fold's end
# while the others have already left, so no collective spans it.
TIMEOUT_S = float(os.environ.get("FVC_DIST_TIMEOUT_S", "1800"))


class RankFailed(UserError):
    """A rank of a data-parallel fold died or failed; finished epochs are kept."""


@dataclass
class Ranks:
    """This process's place in the fold's process group."""

    rank: int
    world: int

    @property
    def writes(self) -> bool:
        """Rank 0 alone writes files and talks to trackers (one writer)."""
        return self.rank == 0

    # -- the training schedule --------------------------------------------------------------------
    def my_batches(self, n_batches: int) -> list[int]:
        """The global batch indices this rank runs in an epoch of ``n_batches``, in order."""
        return list(range(self.rank, n_batches, self.world))

    @staticmethod
    def step_size(n_batches: int, grad_accum: int, world: int, batch: int) -> tuple[int, int]:
        """(step index, how many batches that step covers, all ranks together) of global batch ``batch``."""
        per_step = grad_accum * world
        step = batch // per_step
        return step, min(per_step, n_batches - step * per_step)

    # -- collectives ------------------------------------------------------------------------------
    def all_reduce_gradients(self, parameters: list[torch.nn.Parameter]) -> None:
        """Sum every parameter's gradient over the ranks, in one flat buffer. A parameter no rank
        gave a gradient keeps ``None`` (AdamW then skips it, as in one process); one that only some
        ranks touched gets the sum of those."""
        if not parameters:
            return
        device = parameters[0].device
        had = torch.tensor([p.grad is not None for p in parameters], dtype=torch.float32, device=device)
        flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).float()
                          for p in parameters] + [had])
        dist.all_reduce(flat)
        offset = 0
        for p, any_grad in zip(parameters, flat[-len(parameters):].tolist(), strict=True):
            n = p.numel()
            if any_grad:
                p.grad = flat[offset:offset + n].view_as(p).to(p.dtype).clone()
            else:
                p.grad = None
            offset += n

    def sum(self, *values: float) -> list[float]:
        """Element-wise sum of a few numbers over the ranks (in float64)."""
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out

    def from_rank0(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (its decisions: stop or go on, the history)."""
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]


def join_group(rank: int, world: int, port: int, device: torch.device) -> Ranks:
    """Join the fold's process group at the launcher's store (127.0.0.1:``port``): nccl on CUDA, gloo
    elsewhere, with :data:`TIMEOUT_S` so that a peer that stops answering ends this one too."""
    timeout = datetime.timedelta(seconds=TIMEOUT_S)
    store = dist.TCPStore("127.0.0.1", port, is_master=False, timeout=timeout)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)
    return Ranks(rank, world)


def leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


# -- the launcher ----------------------------------------------------------------------------------

def _rank_main(rank: int, task: Any, world: int, port: int, events: Any, parent: int, threads: int | None) -> None:
    """One rank of a fold, in a process of its own (spawned: nothing of the parent's torch state)."""
    from fvc_core.children import die_with_parent

    # A rank only serves the fold: the launcher killed outright takes its ranks with it.
    die_with_parent(parent)
    # Ctrl-C / SIGTERM reach the whole process group; the launcher says what happened, once.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if threads is not None:
        os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        from fvc_core.executors import ForwardingTracker
        from fvc_core.fold_worker import _fold_context

        if task.cwd and os.path.isdir(task.cwd):
            os.chdir(task.cwd)
        job, trainer = _fold_context(task)
        if rank == 0:
            job.trackers = ForwardingTracker(lambda event: events.put(("event", event)))
        else:
            from rich.console import Console

            job.console = Console(quiet=True)  # one voice: rank 0 prints the fold's lines
        trainer.run_rank(job, task.fold, task.repeat, rank, world, port)
    except BaseException as exc:  # noqa: BLE001 - handed to the launcher, which raises it there
        try:
            events.put(("error", rank, exc))
        except Exception:  # noqa: BLE001 - an exception that does not pickle: its text
            events.put(("error", rank, RankFailed(f"rank {rank}: {type(exc).__name__}: {exc}")))
        raise SystemExit(1) from None
    finally:
        leave_group()


def rank_threads(world: int, setting: int | str) -> int | None:
    """torch threads per rank under ``trainer.num_threads: auto``: the CPUs this process may use,
    shared among the ranks (N ranks of all the CPUs each would oversubscribe them N times)."""
    if setting != "auto":
        return None
    from fvc_core.training.threads import auto_threads

    return max(1, auto_threads().count // world)


def train_fold_on_ranks(task: Any, world: int, events: Any, num_threads: int | str,
                        deliver: Callable[[Any, Any], None]) -> None:
    """Train the fold of ``task`` on ``world`` spawned processes and wait for them; rank 0's tracker
    events reach ``events`` (through ``deliver``) as they come. Returns once every rank ended well;
    a rank that raised re-raises its error here; a rank killed or crashed ends the others and
    raises :class:`RankFailed` in one line. The fold's files are rank 0's: read them afterwards."""
    import torch.multiprocessing as mp

    store = dist.TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False,
                          timeout=datetime.timedelta(seconds=TIMEOUT_S))
    channel = mp.get_context("spawn").Queue()
    context = mp.start_processes(_rank_main, args=(task, world, store.port, channel, os.getpid(),
                                                   rank_threads(world, num_threads)),
                                 nprocs=world, join=False, start_method="spawn")
    errors: list[tuple[int, BaseException]] = []

    def drain(wait: float) -> None:
        try:
            item = channel.get(timeout=wait)
        except queue_module.Empty:
            return
        while True:
            if item[0] == "event":
                deliver(events, item[1])
            else:
                errors.append((item[1], item[2]))
            try:
                item = channel.get_nowait()
            except queue_module.Empty:
                return

    try:
        while True:
            drain(0.2)
            try:
                if context.join(timeout=0):
                    break
            except mp.ProcessExitedException as exc:
                # join() has ended the other ranks already; what a failing rank sent comes first.
                drain(1.0)
                if errors:
                    raise min(errors, key=lambda e: e[0])[1] from None
                raise RankFailed(f"{task.label}: {_died(exc, world)}; the other ranks were stopped, finished "
                                 "epochs are kept: run the same command again to resume") from None
            except mp.ProcessRaisedException as exc:  # cannot happen (_rank_main raises SystemExit): its text
                raise RankFailed(f"{task.label}: rank {exc.error_index} failed: {str(exc).strip().splitlines()[-1]}") \
                    from None
        drain(0)
    finally:
        for process in context.processes:
            if process.is_alive():
                process.terminate()
        for process in context.processes:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
        channel.close()


def _died(exc: Any, world: int) -> str:
    code = exc.exit_code
    if code is not None and code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with code {code}"
    return f"rank {exc.error_index} of {world} data-parallel workers {how}"


def check_devices(device: torch.device, world: int) -> None:
    """A data-parallel fold on CUDA needs a GPU per rank visible to its process."""
    if device.type == "cuda":
        visible = torch.cuda.device_count()
        if visible < world:
            raise UserError(f"trainer.workers_per_fold: {world} ranks on CUDA need {world} GPUs, this process "
                            f"sees {visible}; lower trainer.workers_per_fold, or give the fold more GPUs "
                            "(executor.num_gpus under ray, CUDA_VISIBLE_DEVICES)")
    elif device.type != "cpu":
        raise UserError(f"trainer.workers_per_fold: data-parallel training runs on cpu or cuda, not {device.type}")

