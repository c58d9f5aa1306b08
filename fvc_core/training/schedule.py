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


def warmup_constant(warmup_steps: int) -> Callable[[int], float]:
    """Linear warm-up, then the peak rate (what a plain loop without a scheduler does)."""

    def factor(step: int) -> float:
        return (step + 1) / warmup_steps if step < warmup_steps else 1.0

    return factor


@dataclass
class EarlyStopping:
    """Keeps the best epoch and counts epochs without improvement.

    A tie on the metric is decided by ``tiebreak`` (the epoch's val_loss, lower wins): on a small
    validation part val_auc saturates at 1.0 within a few epochs, and keeping the first such epoch
    kept a half-trained model (issue 18). Epochs up to ``grace_epochs`` (the warm-up) never count
    against patience: the learning rate is still rising and the metric says little yet. Epochs before
    ``min_epochs`` are not candidates at all: on a validation part of 3-5 videos the loss of an
    untrained first epoch was often never beaten, and that model scored the test part (issue 35).
    """

    metric: str
    mode: str
    patience: int | None
    min_delta: float = 0.0
    grace_epochs: float = 0.0
    min_epochs: int = 1
    best: float | None = None
    best_epoch: int | None = None
    best_tiebreak: float | None = None
    bad_epochs: int = 0
    stopped: bool = False

    def _better(self, value: float, tiebreak: float | None) -> bool:
        if self.best_epoch is None:
            return True  # the first epoch is the best so far, even with an undefined metric
        if math.isnan(value):
            return False
        if self.best is None or math.isnan(self.best):
            return True
        if self.mode == "max" and value > self.best + self.min_delta:
            return True
        if self.mode == "min" and value < self.best - self.min_delta:
            return True
        if value != self.best or tiebreak is None or math.isnan(tiebreak):
            return False
        return self.best_tiebreak is None or math.isnan(self.best_tiebreak) or tiebreak < self.best_tiebreak

    def update(self, value: float, epoch: int, tiebreak: float | None = None) -> bool:
        """Record an epoch's validation value; True when it is the best so far (save the model).
        An epoch before ``min_epochs`` is neither kept nor counted against patience."""
        if epoch < self.min_epochs:
            return False
        improved = self._better(value, tiebreak)
        if improved:
            self.best, self.best_epoch, self.best_tiebreak, self.bad_epochs = value, epoch, tiebreak, 0
        elif epoch > self.grace_epochs:
            self.bad_epochs += 1
            if self.patience is not None and self.bad_epochs >= self.patience:
                self.stopped = True
        return improved

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, value)
