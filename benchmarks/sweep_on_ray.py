"""A sweep on Ray: its points side by side (the default) against one after another.

The same 2 x 2 grid as benchmarks/sweep_overhead.py (tiny runs: encoded synthetic clips, naive_cnn,
``--epochs`` epochs, console tracker), with ``--folds`` folds per point, on a Ray instance the sweep
starts on this machine, ``executor.max_concurrent`` = ``--slots`` folds at once. With folds not a
multiple of the slots, one point at a time leaves slots idle at the end of every point (3 folds on
2 slots: the second round runs one fold); side by side the next point's folds take them.

    .venv/bin/python benchmarks/sweep_on_ray.py --repeats 2

Each repeat runs both ways in fresh folders, the order alternating; the ratio is side by side / one
after another (under 1: faster). Writes benchmarks/out/sweep_on_ray.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sweep_overhead import CHUNKS, ENV, FVC, LRS, ROOT, config, timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--slots", type=int, default=2)
    args = parser.parse_args()
    from fvc_loaders.synthetic import make_synthetic_dataset

    os.environ.update({**ENV, "RAY_USAGE_STATS_ENABLED": "0"})
    base = Path(tempfile.mkdtemp(prefix="fvc-sweep-ray-bench-"))
    table = make_synthetic_dataset(base / "videos", videos=3 * args.folds, frames=8, frame_size=32, seed=5)
    seconds: dict[str, list[float]] = {"side_by_side": [], "one_after_another": []}
    try:
        for repeat in range(args.repeats):
            ways = list(seconds) if repeat % 2 == 0 else list(reversed(seconds))
            for way in ways:
                work = base / f"{way}{repeat}"
                work.mkdir()
                exp = config(work, table, args.epochs)
                data = yaml.safe_load(exp.read_text())
                data["trainer"]["folds"] = args.folds
                data["executor"] = {"name": "ray", "max_concurrent": args.slots, "num_cpus": 1}
                exp.write_text(yaml.safe_dump(data))
                command = [*FVC, "sweep", str(exp), f"trainer.lr={','.join(LRS)}",
                           f"model.chunk_size={','.join(CHUNKS)}"]
                if way == "one_after_another":
                    command.append("--points-at-once=1")
                seconds[way].append(timed([command]))
                print(f"repeat {repeat} {way}: {seconds[way][-1]:.1f} s", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    medians = {way: statistics.median(values) for way, values in seconds.items()}
    result = {"points": 4, "folds": args.folds, "slots": args.slots, "epochs": args.epochs, "seconds": seconds,
              "median_s": medians, "ratio": medians["side_by_side"] / medians["one_after_another"],
              "cpus": os.cpu_count(), "load_before": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep_on_ray.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
