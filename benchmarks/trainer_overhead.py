"""Optimiser steps per second: the supervised trainer's training pass vs a bare PyTorch loop.

Same model (naive_cnn from the registry), same clips held in memory, same batch size,
accumulation, AdamW, clipping, class-weighted loss and warm-up/cosine schedule. The two
are interleaved (bare, trainer, bare, trainer, ...) so that a busy shared machine slows
both alike; the ratio of medians is reported.

    .venv/bin/python benchmarks/trainer_overhead.py [--videos 64] [--frames 8] [--size 64] [--repeats 5]
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fvc_core import create_model  # noqa: E402
from fvc_core.tracking import RunInfo, Tracker  # noqa: E402
from fvc_core.training.config import SupervisedConfig  # noqa: E402
from fvc_core.training.data import ClipSource, make_loader  # noqa: E402
from fvc_core.training.loop import Environment, FoldTraining, SkippedVideos  # noqa: E402
from fvc_core.training.progress import RunProgress  # noqa: E402
from fvc_core.training.schedule import warmup_cosine  # noqa: E402


class MemoryDataset:
    on_bad_video = "fail"

    def __init__(self, clips: dict[str, torch.Tensor], labels: dict[str, int]):
        self.clips, self.labels = clips, labels

    def table(self) -> pl.DataFrame:
        paths = sorted(self.clips)
        return pl.DataFrame({"video_path": paths, "label": [self.labels[p] for p in paths], "group": paths})

    def read_video(self, path: str, *, augment: bool = False, seed: int = 0) -> torch.Tensor:
        return self.clips[path]


class Job:
    def __init__(self, model_config: dict, run_dir: Path):
        self.build_model = lambda: create_model("naive_cnn", model_config)
        self.trackers = Tracker()
        self.console = Console(file=io.StringIO())
        self.interactive = False
        self.run = RunInfo("bench", "b", {}, "h", "naive_cnn", run_dir, 1)


def bare_epoch(model, clips, labels, order, cfg: SupervisedConfig, weights, state) -> int:
    """The loop a user would write by hand: returns optimiser steps taken."""
    optimizer, scheduler = state
    model.train()
    optimizer.zero_grad(set_to_none=True)
    n = len(order)
    steps = 0
    for i, path in enumerate(order):
        group_start = (i // cfg.grad_accum) * cfg.grad_accum
        group = min(cfg.grad_accum, n - group_start)
        logits = model(clips[path][None])
        loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor([labels[path]]), weight=weights)
        (loss / group).backward()
        if i + 1 == group_start + group:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            steps += 1
    return steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=64)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--grad-accum", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    g = torch.Generator().manual_seed(0)
    clips = {f"/mem/{i:03d}.mp4": torch.randint(0, 256, (args.frames, 3, args.size, args.size), generator=g,
                                                dtype=torch.uint8) for i in range(args.videos)}
    labels = {p: i % 2 for i, p in enumerate(sorted(clips))}
    cfg = SupervisedConfig(folds=2, epochs=10, grad_accum=args.grad_accum, num_workers=0)
    model_config = {"chunk_size": args.frames}
    weights = torch.tensor([1.0, 1.0])

    # The trainer's own fold machinery, every video in the training part.
    dataset = MemoryDataset(clips, labels)
    paths = sorted(clips)
    source = ClipSource(dataset, paths, [labels[p] for p in paths])
    loader, sampler = make_loader(source, batch_size=1, num_workers=0, prefetch_factor=2, seed=0, pin_memory=False)
    run_dir = Path("/tmp/fvc_bench_overhead")
    job = Job(model_config, run_dir)
    progress = RunProgress(job.console, False, 1, cfg.epochs)
    env = Environment(torch.device("cpu"), None, loader, sampler, paths, {p: i for i, p in enumerate(paths)},
                      SkippedVideos(run_dir / "skipped.json", "fail"), 0, progress)
    parts = {"train": [(i, labels[p]) for i, p in enumerate(paths)], "val": [], "test": []}
    fold = FoldTraining(job, cfg, env, 0, parts, run_dir / "fold_0")
    fold._build()

    torch.manual_seed(0)
    bare_model = create_model("naive_cnn", model_config)
    optimizer = torch.optim.AdamW(bare_model.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(args.videos / cfg.grad_accum)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(2 * steps_per_epoch,
                                                                           cfg.epochs * steps_per_epoch))
    rng = np.random.default_rng(0)

    # One untimed epoch each: allocator and kernel warm-up.
    bare_epoch(bare_model, clips, labels, list(rng.permutation(paths)), cfg, weights, (optimizer, scheduler))
    fold.train_epoch(1)

    bare_rates, trainer_rates = [], []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        steps = bare_epoch(bare_model, clips, labels, list(rng.permutation(paths)), cfg, weights,
                           (optimizer, scheduler))
        bare_rates.append(steps / (time.perf_counter() - t0))
        before = fold.step
        t0 = time.perf_counter()
        fold.train_epoch(r + 2)
        trainer_rates.append((fold.step - before) / (time.perf_counter() - t0))

    bare, trainer = statistics.median(bare_rates), statistics.median(trainer_rates)
    print(f"clips {args.videos} x ({args.frames}, 3, {args.size}, {args.size}) uint8 in memory, batch 1, "
          f"grad_accum {cfg.grad_accum}, naive_cnn chunk_size {args.frames}, torch threads {args.threads}, "
          f"{args.repeats} interleaved epochs each")
    print(f"bare loop : {bare:.3f} optimiser steps/s  (epochs: {', '.join(f'{x:.3f}' for x in bare_rates)})")
    print(f"trainer   : {trainer:.3f} optimiser steps/s  (epochs: {', '.join(f'{x:.3f}' for x in trainer_rates)})")
    print(f"ratio trainer/bare (medians): {trainer / bare:.3f}")


if __name__ == "__main__":
    main()
