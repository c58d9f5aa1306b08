"""One real two-node Ray cluster for the executor tests, bound to 127.0.0.1 and always shut down."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


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


@pytest.fixture(scope="session")
def ray_cluster():
    """Ray's own multi-node test cluster: a head and a second node of one CPU each, processes of
    this session that ``shutdown`` ends (never a `ray stop` of whatever else runs here)."""
    pytest.importorskip("ray")
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_USAGE_STATS_ENABLED")}
    # Ray replaces a loopback address by the machine's outward one when a driver connects, except
    # where multi-node clusters are off (its macOS/Windows default): off here, the driver dials
    # 127.0.0.1 and the test cluster listens on the loopback only.
    cluster_flag = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    # The nodes' workers import the fold functions of tests/executors/tasks.py by name.
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), saved["PYTHONPATH"]) if p)
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False})
    try:
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
        yield cluster
    finally:
        cluster.shutdown()
        ray_constants.ENABLE_RAY_CLUSTER = cluster_flag
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
