"""trainer.num_threads: the real `fvc run` under a CPU affinity mask (taskset) and a cgroup CPU quota
gives torch as many threads as the process may use, recorded in every epoch of history.json and said
in the log; the key overrides it. Where a fold runs in a Ray worker, Ray's OMP_NUM_THREADS (the
task's num_cpus) is one of the limits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytest.importorskip("fvc_loaders")
pytest.importorskip("fvc_naive_cnn")

from fvc_core.training.threads import auto_threads, cgroup_cpus  # noqa: E402
from tests.builders import DROP, tiny_experiment, tiny_videos  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]
CPUS = len(os.sched_getaffinity(0))


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("threads")
    return tiny_experiment(root, tiny_videos(root / "videos", videos=4, seed=3), experiment="threads", seed=13,
                           output_dir=DROP, trainer={"grad_accum": DROP})


def run(config: Path, out: Path, *overrides: str, wrap: list[str] | None = None) -> tuple[str, list[int]]:
    """The run's log (stdout, then stderr), and the thread count each epoch of fold 0 recorded. No
    OMP_NUM_THREADS: torch would take it as the count, and auto as a limit. OMP_DISPLAY_ENV: torch's
    OpenMP (libgomp) prints the settings it read as it loaded, its spin count among them."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    done = subprocess.run([*(wrap or []), *FVC, "run", str(config), f"output_dir={out}", *overrides],
                          capture_output=True, text=True, env={**env, "CI": "1", "OMP_DISPLAY_ENV": "VERBOSE"},
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    history = json.loads((out / "naive_cnn" / "fold_0" / "history.json").read_text())
    return done.stdout + done.stderr, [row["torch_threads"] for row in history]


# libgomp's spin count as it loaded: 0 with OMP_WAIT_POLICY=PASSIVE (set before torch loads, or it
# would not count), 300000 with its default policy.
SLEEPS, SPINS = "GOMP_SPINCOUNT = '0'", "GOMP_SPINCOUNT = '300000'"


@pytest.mark.skipif(not shutil.which("taskset"), reason="needs taskset (util-linux)")
@pytest.mark.parametrize("cpus, overrides, threads, why, spin", [
    ("0", [], 1, "auto: CPUs in the affinity mask", SLEEPS),
    ("0", ["trainer.num_threads=3"], 3, "trainer.num_threads", SPINS),
    pytest.param("0,1", [], 2, "auto: CPUs in the affinity mask", SLEEPS,
                 marks=pytest.mark.skipif(CPUS < 2, reason="needs 2 CPUs")),
])
def test_auto_follows_the_affinity_mask_and_the_key_overrides_it(config, tmp_path, cpus, overrides, threads, why,
                                                                spin):
    log, recorded = run(config, tmp_path / "out", *overrides, wrap=["taskset", "-c", cpus])
    assert f"torch: {threads} intra-op thread(s) ({why})" in log, log
    assert recorded == [threads]
    assert spin in log, log


def _cgroup_with_one_cpu() -> Path | None:
    """A new cgroup of this machine whose quota is one CPU (v2, else v1's cpu controller), or None
    where the test may not make one (not root, no writable cgroup filesystem)."""
    name = f"fvc-test-{uuid.uuid4().hex[:8]}"
    for parent, quota in ((Path("/sys/fs/cgroup"), ("cpu.max", "100000 100000")),
                          (Path("/sys/fs/cgroup/cpu"), ("cpu.cfs_quota_us", "100000"))):
        if not (parent / quota[0]).exists() and not (parent / "cgroup.procs").exists():
            continue
        folder = parent / name
        try:
            folder.mkdir()
        except OSError:
            continue
        try:
            (folder / quota[0]).write_text(quota[1])
            return folder
        except OSError:
            folder.rmdir()
    return None


@pytest.mark.skipif(CPUS < 2, reason="needs 2 CPUs, for a quota below the affinity mask")
def test_auto_follows_a_cgroup_cpu_quota_below_the_affinity_mask(config, tmp_path):
    # torch itself sizes its pool by the affinity mask alone: 2 threads on a 1-CPU quota.
    group = _cgroup_with_one_cpu() if os.geteuid() == 0 else None
    if group is None:
        pytest.skip("cannot make a cgroup with a CPU quota here (needs root and a writable cgroup filesystem)")
    try:
        enter = ["sh", "-c", f'echo $$ > {group / "cgroup.procs"} && exec "$@"', "sh"]
        log, recorded = run(config, tmp_path / "out", wrap=enter)
    finally:
        group.rmdir()  # empty again: the run and its children have ended
    assert "torch: 1 intra-op thread(s) (auto: the cgroup's CPU quota)" in log, log
    assert recorded == [1]


def test_omp_num_threads_is_a_limit_as_ray_sets_it_for_a_tasks_num_cpus(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert (auto_threads().count, auto_threads().why) == (1, "auto: OMP_NUM_THREADS")


def test_the_tightest_quota_on_the_cgroup_path_counts_v2_and_v1(tmp_path):
    # A cgroup filesystem as the kernel lays it out: the job's quota on an ancestor binds its step.
    v2 = tmp_path / "v2"
    (v2 / "job" / "step").mkdir(parents=True)
    (v2 / "cpu.max").write_text("max 100000\n")
    (v2 / "job" / "cpu.max").write_text("250000 100000\n")  # 2.5 CPUs: 3 threads
    (v2 / "job" / "step" / "cpu.max").write_text("max 100000\n")
    procs = tmp_path / "cgroup"
    procs.write_text("0::/job/step\n")
    assert cgroup_cpus(v2, procs) == 3
    procs.write_text("0::/\n")
    assert cgroup_cpus(v2, procs) is None  # no quota anywhere: no limit

    v1 = tmp_path / "v1"
    (v1 / "cpu" / "slice").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    (v1 / "cpu" / "slice" / "cpu.cfs_quota_us").write_text("50000\n")
    (v1 / "cpu" / "slice" / "cpu.cfs_period_us").write_text("100000\n")
    procs.write_text("4:memory:/elsewhere\n1:cpu:/slice\n")
    assert cgroup_cpus(v1, procs) == 1  # half a CPU still gets one thread
