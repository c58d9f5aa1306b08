"""Learning-rate schedule and early stopping, both stepped by the loop and saved in last.pt."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """Factor of the base lr for optimiser step ``s`` (0-based): linear warm-up, then cosine to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


@dataclass
class EarlyStopping:
    metric: str
    mode: str
    patience: int | None
    min_delta: float = 0.0
    best: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    stopped: bool = False

    def update(self, value: float, epoch: int) -> bool:
        """Record an epoch's validation value; True when it is the best so far (save the model)."""
        if self.best_epoch is None:
            improved = True  # the first epoch is the best so far, even with an undefined metric
        elif math.isnan(value):
            improved = False
        elif self.best is None or math.isnan(self.best):
            improved = True
        elif self.mode == "max":
            improved = value > self.best + self.min_delta
        else:
            improved = value < self.best - self.min_delta
        if improved:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
        else:
            self.bad_epochs += 1
            if self.patience is not None and self.bad_epochs >= self.patience:
                self.stopped = True
        return improved

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
