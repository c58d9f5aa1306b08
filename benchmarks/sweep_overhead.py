"""What `fvc sweep` costs over running the same points by hand.

A 2 x 2 grid (trainer.lr x model.chunk_size) of tiny runs (6 encoded synthetic clips, naive_cnn,
2 folds, ``--epochs`` epochs, console tracker) two ways, wall time of the whole thing:

- sweep: ``fvc sweep exp.yaml trainer.lr=1.0e-3,5.0e-4 model.chunk_size=2,4`` (one process);
- by hand: four ``fvc run exp.yaml trainer.lr=... model.chunk_size=... output_dir=...`` (four processes).

Each repeat runs both in fresh folders, the order alternating. The ratio is sweep / by hand:
under 1 means the sweep is cheaper (it starts Python, torch and the plugins once).

    .venv/bin/python benchmarks/sweep_overhead.py --repeats 2

Writes benchmarks/out/sweep_overhead.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
FVC = [sys.executable, "-m", "fvc_core.cli"]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
LRS, CHUNKS = ("1.0e-3", "5.0e-4"), ("2", "4")


def config(work: Path, table: Path, epochs: int) -> Path:
    path = work / "exp.yaml"
    path.write_text(yaml.safe_dump({
        "experiment": "bench", "seed": 3, "output_dir": str(work / "out"),
        "data": {"name": "metadata", "metadata": str(table), "group_column": "source_id", "num_frames": 4,
                 "size": 32},
        "model": {"name": "naive_cnn", "chunk_size": 2},
        "trainer": {"name": "supervised", "folds": 2, "epochs": epochs, "grad_accum": 2, "warmup_epochs": 1,
                    "num_workers": 0, "early_stopping": {"patience": None}},
        "trackers": ["console"],
    }))
    return path


def timed(commands: list[list[str]]) -> float:
    start = time.perf_counter()
    for command in commands:
        subprocess.run(command, env=ENV, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    from fvc_loaders.synthetic import make_synthetic_dataset

    base = Path(tempfile.mkdtemp(prefix="fvc-sweep-bench-"))
    table = make_synthetic_dataset(base / "videos", videos=6, frames=8, frame_size=32, seed=5)
    sweep_s, hand_s = [], []
    try:
        for repeat in range(args.repeats):
            for way in (("sweep", "hand") if repeat % 2 == 0 else ("hand", "sweep")):
                work = base / f"{way}{repeat}"
                work.mkdir()
                exp = config(work, table, args.epochs)
                if way == "sweep":
                    sweep_s.append(timed([[*FVC, "sweep", str(exp), f"trainer.lr={','.join(LRS)}",
                                           f"model.chunk_size={','.join(CHUNKS)}"]]))
                else:
                    hand_s.append(timed([[*FVC, "run", str(exp), f"trainer.lr={lr}", f"model.chunk_size={c}",
                                          f"output_dir={work / 'out' / f'lr{lr}_c{c}'}"]
                                         for lr in LRS for c in CHUNKS]))
                print(f"repeat {repeat} {way}: {(sweep_s if way == 'sweep' else hand_s)[-1]:.1f} s", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    result = {"points": 4, "folds": 2, "epochs": args.epochs, "sweep_s": sweep_s, "by_hand_s": hand_s,
              "sweep_median_s": statistics.median(sweep_s), "by_hand_median_s": statistics.median(hand_s),
              "ratio": statistics.median(sweep_s) / statistics.median(hand_s), "cpus": os.cpu_count(),
              "load_before": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))
    out = ROOT / "benchmarks" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep_overhead.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
