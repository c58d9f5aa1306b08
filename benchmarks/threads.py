"""trainer.num_threads: epoch time of a tiny real training with ``auto`` against torch's own default,
on the machine as it is ("quiet") and beside a CPU-burning competitor (one busy process per CPU).

Each arm is the real ``fvc run`` of the quickstart's model and data settings (2 folds, 3 epochs, its
synthetic videos made once beforehand), without OMP_NUM_THREADS or OMP_WAIT_POLICY in the
environment:

- ``default``: ``trainer.num_threads=N``, N being what torch picks by itself here (its pool sized to
  the affinity mask, OpenMP's waiting threads spinning): what fvc did before the key existed;
- ``auto``: ``trainer.num_threads=auto`` (the CPUs the process may use; waiting threads sleep).

The epoch time is the median of every epoch's ``epoch_seconds`` in the folds' history.json (the
first epochs included). Beside each arm: the load average, and the share of the machine's CPU time
that was busy while it ran (/proc/stat), this arm's own work included: on a machine shared with
others, "quiet" is what they left.

    .venv/bin/python benchmarks/threads.py            # both conditions, both arms, ratios
    .venv/bin/python benchmarks/threads.py --epochs 2 # shorter

Writes benchmarks/out/threads.json (work folder benchmarks/out/threads/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
WORK = OUT / "threads"
BURN = "while True:\n    pass\n"


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS")}
    return {**env, "CI": "1"}


def torch_default_threads() -> int:
    done = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=clean_env(),
                          capture_output=True, text=True, check=True)
    return int(done.stdout.strip())


def cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def fvc(epochs: int) -> list[str]:
    return [sys.executable, "-m", "fvc_core.cli", "run", str(ROOT / "examples/quickstart.yaml"),
            f"data.root={WORK / 'data'}", "trainer.folds=2", f"trainer.epochs={epochs}", "trackers=[console]"]


def arm(name: str, setting: str, epochs: int) -> dict[str, object]:
    folder = WORK / name
    shutil.rmtree(folder, ignore_errors=True)
    load_before = os.getloadavg()
    busy0, total0 = cpu_times()
    start = time.perf_counter()
    done = subprocess.run([*fvc(epochs), f"output_dir={folder}", f"trainer.num_threads={setting}"],
                          env=clean_env(), capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    busy1, total1 = cpu_times()
    if done.returncode != 0:
        raise SystemExit(f"{name}: fvc run failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    rows = [row for k in range(2)
            for row in json.loads((folder / f"naive_cnn/fold_{k}/history.json").read_text())]
    said = next(line for line in done.stdout.splitlines() if line.startswith("torch: "))
    out = {"setting": setting, "said": said, "threads": sorted({row["torch_threads"] for row in rows}),
           "epoch_s_median": statistics.median(row["epoch_seconds"] for row in rows),
           "epoch_s": [round(row["epoch_seconds"], 3) for row in rows], "wall_s": wall,
           "loadavg_1m_before": load_before[0], "loadavg_1m_after": os.getloadavg()[0],
           "machine_busy_share": (busy1 - busy0) / max(1, total1 - total0)}
    print(name, json.dumps(out), flush=True)
    return out


def burners(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", BURN], env=clean_env()) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--conditions", default="quiet,loaded",
                        help="which to run, comma-separated: quiet (the machine as it is), loaded (with burners)")
    args = parser.parse_args()
    import torch

    WORK.mkdir(parents=True, exist_ok=True)
    default = str(torch_default_threads())
    # The videos first, so no timed arm pays for making them.
    subprocess.run([*fvc(1), f"output_dir={WORK / 'warmup'}"], env=clean_env(), check=True, capture_output=True,
                   cwd=ROOT)
    result: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0)),
                    "python": platform.python_version(), "torch": torch.__version__,
                    "torch_default_threads": int(default)},
        "command": "benchmarks/threads.py " + " ".join(sys.argv[1:]),
    }
    conditions = [c for c in args.conditions.split(",") if c in ("quiet", "loaded")]
    for condition in conditions:
        competitors = burners(os.cpu_count() or 1) if condition == "loaded" else []
        try:
            time.sleep(1.0 if competitors else 0.0)
            arms = {"default": arm(f"{condition}_default", default, args.epochs),
                    "auto": arm(f"{condition}_auto", "auto", args.epochs)}
        finally:
            for proc in competitors:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
        arms["ratio_default_over_auto"] = arms["default"]["epoch_s_median"] / arms["auto"]["epoch_s_median"]
        result[condition] = arms
    OUT.mkdir(parents=True, exist_ok=True)
    name = "threads.json" if conditions == ["quiet", "loaded"] else f"threads_{'_'.join(conditions)}.json"
    (OUT / name).write_text(json.dumps(result, indent=2))
    print(json.dumps({c: result[c]["ratio_default_over_auto"] for c in conditions}))


if __name__ == "__main__":
    main()
