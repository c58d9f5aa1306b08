"""The frozen-feature cache's saving: epochs of a linear probe (``freeze: backbone``) trained by fvc's
supervised trainer with ``feature_cache: memory`` against the same probe without it.

Two folds of the same model on the same clips held in memory (``FoldTraining.train_epoch``: its DataLoader,
loss, accumulation, AdamW, schedule; the same bytes every epoch, as a data section without augmentation
gives them), interleaved epoch by epoch, each arm first in turn, so a busy shared machine slows both alike.
Epoch 1 fills the cache (every clip a miss: hashing the clip is its extra cost, also timed alone); later
epochs read it. Clips come from memory, so the time to decode a video, which this cache does not save
(data.cache does), is in neither arm.

    .venv/bin/python benchmarks/timm_feature_cache.py [--arch resnet10t] [--size 64] [--videos 16]
        [--frames 32] [--epochs 3] [--chunk 32] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fvc_timm.feature_cache import clip_key  # noqa: E402

from benchmarks.timm_speed import Job  # noqa: E402
from benchmarks.trainer_overhead import MemoryDataset  # noqa: E402
from fvc_core.training.config import SupervisedConfig  # noqa: E402
from fvc_core.training.data import ClipSource, make_loader  # noqa: E402
from fvc_core.training.loop import Environment, FoldTraining, SkippedVideos  # noqa: E402
from fvc_core.training.progress import RunProgress  # noqa: E402


def probe(args: argparse.Namespace, clips: dict, labels: dict, cache: str, run_dir: Path) -> FoldTraining:
    device = torch.device(args.device)
    cfg = SupervisedConfig(folds=2, epochs=args.epochs, grad_accum=args.grad_accum, num_workers=0, amp="off",
                           device=args.device)
    model_config = {"arch": args.arch, "chunk_size": args.chunk, "freeze": "backbone", "feature_cache": cache}
    paths = sorted(clips)
    source = ClipSource(MemoryDataset(clips, labels), paths, [labels[p] for p in paths])
    loader, sampler = make_loader(source, batch_size=args.batch, num_workers=0, prefetch_factor=2, seed=0,
                                  pin_memory=device.type == "cuda")
    job = Job(model_config, run_dir)
    progress = RunProgress(job.console, False, 1, cfg.epochs)
    env = Environment(device, None, loader, sampler, paths, {p: i for i, p in enumerate(paths)},
                      SkippedVideos(run_dir / "skipped.json", "fail"), 0, progress)
    parts = {"train": [(i, labels[p]) for i, p in enumerate(paths)], "val": [], "test": []}
    torch.manual_seed(0)
    fold = FoldTraining(job, cfg, env, 0, parts, run_dir / "fold_0")
    fold._build()
    return fold


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="resnet10t")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--grad-accum", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    clips = {f"/mem/{i:03d}.mp4": torch.randint(0, 256, (args.frames, 3, args.size, args.size), generator=g,
                                                dtype=torch.uint8) for i in range(args.videos)}
    labels = {p: i % 2 for i, p in enumerate(sorted(clips))}
    folds = {cache: probe(args, clips, labels, cache, Path(f"/tmp/fvc_bench_timm_cache_{cache}"))
             for cache in ("off", "memory")}
    # One untimed pass of a clip outside the data through each (the first call's one-off costs).
    spare = torch.randint(0, 256, (1, args.frames, 3, args.size, args.size), generator=g, dtype=torch.uint8)
    with torch.no_grad():
        for fold in folds.values():
            fold.model(spare.to(args.device))
    folds["memory"].model.feature_cache.clear()
    folds["memory"].model.feature_cache.hits = folds["memory"].model.feature_cache.misses = 0
    times: dict[str, list[float]] = {"off": [], "memory": []}
    for epoch in range(1, args.epochs + 1):
        for cache in ("off", "memory") if epoch % 2 else ("memory", "off"):  # each arm first in turn
            fold = folds[cache]
            t0 = time.perf_counter()
            fold.train_epoch(epoch)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[cache].append(time.perf_counter() - t0)
    off, on = times["off"], times["memory"]
    same = all(torch.equal(a, b) for a, b in zip(folds["off"].model.state_dict().values(),
                                                 folds["memory"].model.state_dict().values(), strict=True))
    cache = folds["memory"].model.feature_cache
    print(f"feature cache: linear probe of timm {args.arch}, {args.videos} clips x ({args.frames}, 3, {args.size}, "
          f"{args.size}) uint8 in memory, batch {args.batch}, chunk_size {args.chunk}, {args.device}, torch "
          f"threads {torch.get_num_threads()}, {args.epochs} interleaved epochs each")
    print(f"  {'epoch':>5} {'off s':>8} {'memory s':>9} {'off/memory':>11}")
    for e, (a, b) in enumerate(zip(off, on, strict=True), 1):
        print(f"  {e:>5} {a:>8.3f} {b:>9.3f} {a / b:>11.2f}")
    later_off, later_on = statistics.median(off[1:] or off), statistics.median(on[1:] or on)
    print(f"  epochs 2-{args.epochs} (median): off/memory {later_off / later_on:.1f}x; epoch 1 (filling): "
          f"off/memory {off[0] / on[0]:.2f}; all {args.epochs}: off/memory {sum(off) / sum(on):.2f}")
    t0 = time.perf_counter()
    for clip in clips.values():
        clip_key(clip.to(args.device))
    hashing = (time.perf_counter() - t0) / len(clips)
    print(f"  hashing a clip (SHA-256 of its bytes, from {args.device}): {1000 * hashing:.2f} ms")
    print(f"  cache: {len(cache)} clips, {cache.bytes / 2**20:.2f} MiB, {cache.hits} hits, {cache.misses} misses; "
          f"trained weights identical with and without: {same}")


if __name__ == "__main__":
    main()
