"""fvc's own errors survive pickling: Ray ships a fold's error back to the driver pickled (and so would
a spawned worker). Before, a BadVideoError raised TypeError when unpickled, which Ray reports as a
lost worker (retried three times, then 'its Ray worker or node was lost'), a ConfigError came back
split into one character a line, and a DiskFullError named its own message as the path."""

from __future__ import annotations

import pickle

import pytest

from fvc_core.errors import BadVideoError, ConfigError, DiskFullError


@pytest.mark.parametrize("error", [
    BadVideoError("/videos/real/a.mp4", "file not found"),
    ConfigError(["model.name: required", "trainer.lr: must be > 0"], "exp.yaml"),
    DiskFullError("/runs/x/fold_0/model.pt"),
], ids=lambda e: type(e).__name__)
def test_error_round_trips_through_pickle(error):
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert vars(back) == vars(error)
