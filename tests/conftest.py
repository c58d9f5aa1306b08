"""Shared by every test module."""

import importlib
import os
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

from tests.builders import fvc, tiny_experiment, tiny_videos, with_a_broken_video, write_distribution

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


@pytest.fixture
def site(tmp_path, monkeypatch) -> Iterator[Path]:
    """A folder on sys.path for throw-away distributions (tests.builders.write_distribution); the
    plugin registry is rebuilt around the test, no plugin is disabled by an earlier `fvc -p no:NAME`
    (which exports the disabled set for child processes), and the fvctest_* modules are forgotten."""
    from fvc_core.plugins import DISABLE_ENV, clear_cache

    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    monkeypatch.setenv(DISABLE_ENV, "")
    clear_cache()
    yield path
    clear_cache()
    for mod in [m for m in sys.modules if m.startswith("fvctest_")]:
        del sys.modules[mod]


@pytest.fixture
def install_plugin(site) -> Callable[..., ModuleType]:
    """pytester's idea for fvc: ``install_plugin(dist, source, entry_point=...)`` installs a one-module
    distribution (module ``fvctest_*``, named after ``dist`` unless ``module`` says) into ``site``,
    found through its entry point like any plugin, and returns the module; it is gone after the test."""
    from fvc_core.plugins import clear_cache

    def install(dist: str, source: str, *, entry_point: str, module: str | None = None) -> ModuleType:
        module = module or dist.replace("-", "_")
        write_distribution(site, dist, {module: source}, {entry_point: module})
        clear_cache()
        return importlib.import_module(module)

    return install


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """Tiny tensors on a busy machine: one torch thread (two ran 7x slower), restored after the test."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A tiny real finished run, built once a session: `fvc run` with the PyAV loader and naive_cnn on
    6 real and 6 fake H.264 clips plus one corrupt file (skipped), 2 folds of 2 epochs."""
    pytest.importorskip("fvc_loaders")
    pytest.importorskip("fvc_naive_cnn")
    root = tmp_path_factory.mktemp("report_run")
    videos = with_a_broken_video(tiny_videos(root / "videos", seed=3))
    experiment = tiny_experiment(root, videos, experiment="report", seed=11, data={"on_bad_video": "skip"},
                                 trainer={"epochs": 2})
    done = fvc("run", str(experiment))
    assert done.returncode == 0, done.stdout + done.stderr
    return root / "out/naive_cnn"
