"""Time `fvc report` on a large run: 5 folds x 2,000 test videos, 25 epochs of history per fold.

The run folder is synthetic (written here, no training): predictions with scores drawn per class,
metrics.json from fvc's own compute_metrics, history.json, config.yaml, run.json. The videos do not
exist, so sample frames are skipped with a note (decoding a handful of clips is not what scales).

    .venv/bin/python benchmarks/report_speed.py [--folds 5] [--videos 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl
import yaml

from fvc_core.training.metrics import compute_metrics


def make_run(root: Path, folds: int, videos: int, epochs: int = 25) -> Path:
    run = root / "out/naive_cnn"
    run.mkdir(parents=True)
    config = {"experiment": "bench", "seed": 0, "output_dir": str(root / "out"),
              "data": {"name": "metadata", "metadata": str(root / "absent.parquet"), "num_frames": 16, "size": 128},
              "model": {"name": "naive_cnn"},
              "trainer": {"name": "supervised", "folds": folds, "threshold": 0.5,
                          "early_stopping": {"metric": "val_auc"}},
              "trackers": []}
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    (run / "run.json").write_text(json.dumps({"run_id": "bench", "experiment": "bench", "model": "naive_cnn",
                                              "config_hash": "0", "status": "finished"}))
    rng = np.random.default_rng(0)
    for k in range(folds):
        d = run / f"fold_{k}"
        d.mkdir()
        labels = rng.integers(0, 2, videos)
        scores = np.clip(rng.normal(0.35 + 0.3 * labels, 0.2), 0, 1)
        paths = [str(root / f"videos/{'fake' if y else 'real'}/v{k}_{i:05d}.mp4") for i, y in enumerate(labels)]
        pl.DataFrame({"video_path": paths, "label": labels, "score": scores, "fold": [k] * videos}).write_parquet(
            d / "predictions.parquet")
        best = int(rng.integers(5, epochs))
        metrics = {**compute_metrics(labels, scores, 0.5), "fold": k, "best_epoch": best, "best_metric": "val_auc"}
        (d / "metrics.json").write_text(json.dumps(metrics))
        history = [{"epoch": e, "train_loss": 0.7 / e ** 0.3, "val_loss": 0.7 / e ** 0.2, "val_auc": 1 - 0.5 / e,
                    "lr": 5e-4 * (1 - e / epochs)} for e in range(1, epochs + 1)]
        (d / "history.json").write_text(json.dumps(history))
    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = make_run(Path(tmp), args.folds, args.videos)
        out = Path(tmp) / "report.html"
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "fvc_core.cli", "report", str(run), "-o", str(out)],
                                  capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if done.returncode != 0:
                sys.exit(done.stdout + done.stderr)
        print(f"{args.folds} folds x {args.videos} videos: fvc report (whole command, process start included) "
              f"median {statistics.median(times):.2f} s of {[f'{t:.2f}' for t in times]}; "
              f"report {out.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
