"""What the executor tests share (the Ray test cluster itself is in tests/conftest.py: sweeps use it too)."""

from __future__ import annotations

import pytest


class Recorder:
    """The driver's trackers, as the executor sees them: every event, in the order delivered."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def log_epoch(self, fold, epoch, metrics, step):
        self.events.append(("log_epoch", fold, epoch, metrics, step))

    def warn(self, message):
        self.events.append(("warn", message))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()
