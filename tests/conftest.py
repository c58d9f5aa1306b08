"""Shared by every test module."""

import os
import signal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# A script that starts a job in the background (`cmd &` without job control, as CI runners may) makes
# it ignore SIGINT, and Python then never raises KeyboardInterrupt. The Ctrl-C tests need it, in this
# process and in the fvc processes it starts: a handled signal is reset to the default across exec,
# an ignored one is not.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


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
