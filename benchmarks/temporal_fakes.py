"""naive_cnn against a temporal model on fakes visible only over time, side by side.

    python benchmarks/temporal_fakes.py [--videos 24] [--folds 3] [--epochs 8] [--out /tmp/temporal_fakes]

Real and fake clips are lossless H.264 files of a moving texture whose brightness alternates
between b - 24 and b + 24: every second frame in a real clip (low low high high ...), every frame in
a fake (low high low high ...: a flicker). Any 8 consecutive frames of either hold 4 low and 4 high
frames of the same moving texture, so a model that scores frames one by one and averages them (even
with BatchNorm statistics taken over the clip's frames) sees the same set of frames for both: only
their order tells a fake. Both models read the same windows of consecutive frames
(`data.sampler: window`) and train with the same trainer settings; the table is each model's mean test
ROC AUC over the folds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import polars as pl
import yaml

SIZE, FRAMES, FPS, LEVEL = 48, 16, 12, 24


def _texture(rng: np.random.Generator) -> np.ndarray:
    """A smooth random texture, twice the frame size, to slide a frame-sized view over."""
    coarse = rng.uniform(60, 196, (SIZE // 4, SIZE // 4, 3))
    return np.kron(coarse, np.ones((8, 8, 1)))


def write_clip(path: Path, rng: np.random.Generator, fake: bool, level: int = LEVEL) -> None:
    texture = _texture(rng)
    base = rng.uniform(-16, 16)
    dy, dx = rng.integers(1, 3, size=2)
    phase = rng.integers(0, 4)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"qp": "0"}  # lossless: no compression artefact can differ between the two
        stream.time_base = Fraction(1, FPS)
        for t in range(FRAMES):
            step = t + phase
            sign = (-1) ** step if fake else (-1) ** (step // 2)
            view = texture[(t * dy) % SIZE:(t * dy) % SIZE + SIZE, (t * dx) % SIZE:(t * dx) % SIZE + SIZE]
            frame = np.clip(view + base + level * sign, 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def make_dataset(root: Path, videos: int, seed: int) -> Path:
    table = root / "metadata.parquet"
    if table.is_file():
        return table
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(videos):
        for fake in (False, True):
            path = root / ("fake" if fake else "real") / f"{i:03d}.mp4"
            path.parent.mkdir(parents=True, exist_ok=True)
            write_clip(path, rng, fake)
            rows.append({"video_path": str(path), "label": int(fake), "group": f"{i:03d}-{int(fake)}"})
    pl.DataFrame(rows).write_parquet(table)
    return table


def run(name: str, model: dict, table: Path, out: Path, args: argparse.Namespace) -> dict:
    config = {
        "experiment": f"temporal-{name}", "seed": 3, "output_dir": str(out / "runs"),
        "data": {"name": "metadata", "metadata": str(table), "sampler": "window", "clip_len": 8, "size": 48,
                 "clips_per_video": 2},
        "model": model,
        "trainer": {"name": "supervised", "folds": args.folds, "epochs": args.epochs, "batch_size": 4,
                    "grad_accum": 1, "lr": 1e-3, "warmup_epochs": 1, "num_workers": 0,
                    "early_stopping": {"patience": None}},
        "trackers": [],
    }
    path = out / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fvc_core.cli", "run", str(path)], check=True,
                   stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    summary = json.loads((out / "runs" / model["name"] / "summary.json").read_text())
    return {"model": name, "auc": summary["mean"]["roc_auc"], "auc_std": summary["std"]["roc_auc"],
            "accuracy": summary["mean"]["accuracy"], "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--folds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("/tmp/temporal_fakes"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    table = make_dataset(args.out / "videos", args.videos, seed=0)
    rows = [run("naive_cnn", {"name": "naive_cnn", "chunk_size": 8}, table, args.out, args),
            run("r2plus1d (blocks 1)", {"name": "r2plus1d", "blocks": 1}, table, args.out, args)]
    print(f"{'model':<22}{'test ROC AUC':>18}{'accuracy':>10}{'wall s':>8}")
    for r in rows:
        print(f"{r['model']:<22}{r['auc']:>11.3f} ± {r['auc_std']:.3f}{r['accuracy']:>10.3f}{r['seconds']:>8.0f}")


if __name__ == "__main__":
    main()
