"""BatchNorm helpers shared by the model plugins' memory-bounded forwards."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from torch import nn


@contextlib.contextmanager
def running_stats_frozen(module: nn.Module, frozen: bool = True) -> Iterator[None]:
    """BatchNorm normalises with the batch as usual but leaves its running statistics (and its batch
    count) alone inside the block: for a chunk recomputed in backward (gradient checkpointing), whose
    statistics the first pass already counted. ``frozen=False`` is a no-op, so a forward can say
    ``with running_stats_frozen(net, recomputing):``."""
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)] if frozen else []
    saved = [(m.momentum, m.num_batches_tracked.clone() if m.num_batches_tracked is not None else None)
             for m in norms]
    for m in norms:
        m.momentum = 0.0
    try:
        yield
    finally:
        for m, (momentum, tracked) in zip(norms, saved, strict=True):
            m.momentum = momentum
            if tracked is not None:
                m.num_batches_tracked.copy_(tracked)
