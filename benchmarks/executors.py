"""What the executors cost and give: Ray's fixed start-up, and the quickstart's folds local against ray.

1. startup: in a fresh interpreter each time, ``import ray``, then ``RayExecutor.start()`` with no
   address (a Ray instance started for the run, bound to 127.0.0.1), one trivial fold task there
   and back (a worker process started and the task's function shipped), and ``close()``. What a
   run on ``executor.name=ray`` pays before and after its folds; the ``local`` executor pays none
   of it (it starts nothing and imports nothing).
2. quickstart: ``fvc run examples/quickstart.yaml`` as subprocesses on the same data, wall time:
   ``executor.name=local`` (the default: one process, torch's own threads), then
   ``executor.name=ray executor.num_cpus=1`` (Ray on this machine: one single-threaded worker
   per CPU, folds side by side). Each run goes to its own output folder; the ray run is checked
   to have gone through fold tasks (its ``.fold-locks``) and its per-fold metrics compared to
   local's (equal only when both use one thread per fold: see docs/scale.md).

    .venv/bin/python benchmarks/executors.py --startup-only
    .venv/bin/python benchmarks/executors.py

Writes benchmarks/out/executors.json (and a work folder benchmarks/out/executors/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
WORK = OUT / "executors"

STARTUP = r"""
import json, sys, time
t0 = time.perf_counter()
import ray
t1 = time.perf_counter()
from fvc_core.executors import FoldTask
from fvc_ray.config import RayExecutorConfig
from fvc_ray.executor import RayExecutor

def trivial(task, events):
    events.log_epoch(task.fold, 1, {"train_loss": 1.0}, 1)
    return task.fold

class Sink:
    def log_epoch(self, *args): pass

executor = RayExecutor(RayExecutorConfig(address="local"))
executor.start()
t2 = time.perf_counter()
list(executor.run([FoldTask(config={}, run_dir=sys.argv[1], fold=0)], trivial, Sink()))
t3 = time.perf_counter()
executor.close()
t4 = time.perf_counter()
print(json.dumps({"import_ray_s": t1 - t0, "start_s": t2 - t1, "first_task_s": t3 - t2, "close_s": t4 - t3,
                  "total_s": t4 - t0}))
"""


def startup(repeats: int) -> list[dict[str, float]]:
    WORK.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    rows = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", STARTUP, str(WORK)], capture_output=True, text=True, env=env,
                              check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print("startup", rows[-1], flush=True)
    return rows


def quickstart() -> dict[str, object]:
    env = {**os.environ, "CI": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    fvc = [sys.executable, "-m", "fvc_core.cli", "run", str(ROOT / "examples/quickstart.yaml")]
    # Make the data first, so neither timed run pays for it.
    subprocess.run([*fvc, f"output_dir={WORK / 'warmup'}", "trainer.folds=2", "trainer.epochs=1"], env=env,
                   check=True, capture_output=True, cwd=ROOT)
    out: dict[str, object] = {}
    for name, extra in (("local", ["executor.name=local"]), ("ray", ["executor.name=ray", "executor.num_cpus=1"])):
        folder = WORK / name
        shutil.rmtree(folder, ignore_errors=True)
        start = time.perf_counter()
        done = subprocess.run([*fvc, f"output_dir={folder}", *extra], env=env, capture_output=True, text=True,
                              cwd=ROOT)
        wall = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(f"{name}: fvc run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        out[f"{name}_s"] = wall
        print(name, f"{wall:.1f} s", flush=True)
    run_local, run_ray = WORK / "local/naive_cnn", WORK / "ray/naive_cnn"
    out["ray_went_through_tasks"] = (run_ray / ".fold-locks").is_dir()
    out["metrics_equal"] = all((run_local / f"fold_{k}/metrics.json").read_bytes()
                               == (run_ray / f"fold_{k}/metrics.json").read_bytes() for k in range(5))
    out["ratio_ray_over_local"] = out["ray_s"] / out["local_s"]  # type: ignore[operator]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--startup-only", action="store_true")
    parser.add_argument("--startup-repeats", type=int, default=3)
    args = parser.parse_args()
    import ray

    result: dict[str, object] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                             "ray": ray.__version__}}
    result["startup"] = startup(args.startup_repeats)
    if not args.startup_only:
        result["quickstart"] = quickstart()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "executors.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
