"""The fake plugin distribution of tests/core (instant dataset, model, trainer, trackers) for sweeps."""

from tests.core.conftest import config, events  # noqa: F401 - fixtures used by this folder's tests
