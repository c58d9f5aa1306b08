"""One fold trained data-parallel on ``trainer.workers_per_fold`` processes (torch.distributed): the
rank side. The launcher, which starts the ranks where the fold would have run, is the runtime's
(``fvc_core.fold_ranks``); each rank rebuilds the run from the fold's task and calls the trainer's
``run_rank``, which joins the group here.

:class:`Ranks` is what ``FoldTraining`` asks: which share of an epoch's batches is this rank's, the
gradient all-reduce at each optimiser step, the gathering of a sharded validation pass.

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
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from fvc_core.errors import UserError

# How long a rank waits for the others at a collective before it gives up: a backstop only (the
# launcher ends every rank as soon as one dies); rank 0 alone scores the test part at the fold's end
# while the others have already left, so no collective spans it.
TIMEOUT_S = float(os.environ.get("FVC_DIST_TIMEOUT_S", "1800"))


@dataclass
class Ranks:
    """This process's place in the fold's process group."""

    rank: int
    world: int
    device: torch.device = torch.device("cpu")
    """Where the collectives' tensors live (nccl reduces CUDA tensors only)."""

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

    def broadcast_buffers(self, model: torch.nn.Module) -> None:
        """Rank 0's buffers (BatchNorm's running statistics) on every rank, as DDP's
        ``broadcast_buffers`` does: the ranks then validate with the model rank 0 saves."""
        for buffer in model.buffers():
            dist.broadcast(buffer, src=0)

    def sum(self, *values: float) -> list[float]:
        """Element-wise sum of a few numbers over the ranks (in float64)."""
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value`` (picklable), in rank order, on every rank."""
        out: list[Any] = [None] * self.world
        dist.all_gather_object(out, value)
        return out


def join_group(rank: int, world: int, port: int, device: torch.device, host: str = "127.0.0.1") -> Ranks:
    """Join the fold's process group at the store ``host:port`` (the launcher's on 127.0.0.1 when the
    ranks share a machine, rank 0's node address when they are spread over a Ray cluster): nccl on
    CUDA, gloo elsewhere, with :data:`TIMEOUT_S` so that a peer that stops answering ends this one too."""
    timeout = datetime.timedelta(seconds=TIMEOUT_S)
    store = dist.TCPStore(host, port, is_master=False, timeout=timeout)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)
    return Ranks(rank, world, device)


def leave_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def check_devices(device: torch.device, world: int) -> None:
    """A data-parallel fold on CUDA needs a GPU per rank visible to its process: ``world`` is the number
    of ranks sharing this process's GPUs (the fold's ranks started on one machine; 1 for a rank that Ray
    gave a bundle of its own)."""
    if device.type == "cuda":
        visible = torch.cuda.device_count()
        if visible < world:
            raise UserError(f"trainer.workers_per_fold: {world} ranks on CUDA need {world} GPUs, this process "
                            f"sees {visible}; lower trainer.workers_per_fold, or give the fold more GPUs "
                            "(executor.num_gpus under ray, CUDA_VISIBLE_DEVICES)")
    elif device.type != "cpu":
        raise UserError(f"trainer.workers_per_fold: data-parallel training runs on cpu or cuda, not {device.type}")
