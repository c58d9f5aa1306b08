"""A timm model trained by fvc against a bare PyTorch loop of the same network on the same clips, and its
training memory at 32 and 500 frames.

Speed: clips per second of the supervised trainer's training pass (``FoldTraining.train_epoch``: its
DataLoader, class-weighted loss, accumulation, clipping, AdamW, warm-up/cosine) against the loop a user
writes by hand around ``timm.create_model`` (the clip's frames normalised with timm's mean and std, one
forward of the T frames, the mean of their logits), same clips in memory, same batch, same optimiser.
The two are interleaved (bare, fvc, bare, fvc, ...) so a busy shared machine slows both alike; the ratio
of medians is reported.

Memory: each measurement in a fresh process, one training step (forward and backward) on one clip: on CPU
the peak resident memory over the step (VmHWM, reset just before it through /proc/self/clear_refs) less the
resident memory then; on CUDA
torch.cuda.max_memory_allocated less the memory allocated before it. fvc's bounded chunks against
train_memory: unbounded (every chunk's activations kept, as a bare loop over the frames would).

    .venv/bin/python benchmarks/timm_speed.py [--arch resnet10t] [--size 64] [--videos 16] [--frames 32]
        [--repeats 5] [--memory-frames 32 500] [--chunk 32] [--device cpu]
"""

from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.trainer_overhead import MemoryDataset  # noqa: E402
from fvc_core import create_model  # noqa: E402
from fvc_core.tracking import RunInfo, Tracker  # noqa: E402
from fvc_core.training.config import SupervisedConfig  # noqa: E402
from fvc_core.training.data import ClipSource, make_loader  # noqa: E402
from fvc_core.training.loop import Environment, FoldTraining, SkippedVideos  # noqa: E402
from fvc_core.training.progress import RunProgress  # noqa: E402
from fvc_core.training.schedule import warmup_cosine  # noqa: E402


class Job:
    def __init__(self, model_config: dict, run_dir: Path):
        self.build_model = lambda: create_model("timm", model_config)
        self.trackers = Tracker()
        self.console = Console(file=io.StringIO())
        self.interactive = False
        self.run = RunInfo("bench", "b", {}, "h", "timm", run_dir, 1)


class BareDetector(torch.nn.Module):
    """What a user writes around timm: normalise the frames, one forward, the mean of the frames' logits."""

    def __init__(self, arch: str):
        super().__init__()
        from fvc_timm.timm_import import import_timm

        self.net = import_timm().create_model(arch, num_classes=2)
        cfg = self.net.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg["mean"]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(cfg["std"]).view(1, 3, 1, 1))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:  # (T, 3, H, W) uint8 -> (1, 2)
        x = (clip.float() / 255 - self.mean) / self.std
        return self.net(x).mean(0, keepdim=True)


def bare_epoch(model, clips, labels, order, cfg: SupervisedConfig, weights, state, device) -> int:
    optimizer, scheduler = state
    model.train()
    optimizer.zero_grad(set_to_none=True)
    n, done = len(order), 0
    for i, path in enumerate(order):
        group_start = (i // cfg.grad_accum) * cfg.grad_accum
        group = min(cfg.grad_accum, n - group_start)
        logits = model(clips[path].to(device))
        loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor([labels[path]], device=device),
                                                 weight=weights)
        (loss / group).backward()
        if i + 1 == group_start + group:
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.max_grad_norm)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            scheduler.step()
        done += 1
    if device.type == "cuda":
        torch.cuda.synchronize()
    return done


def speed(args: argparse.Namespace) -> None:
    device = torch.device(args.device)
    g = torch.Generator().manual_seed(0)
    clips = {f"/mem/{i:03d}.mp4": torch.randint(0, 256, (args.frames, 3, args.size, args.size), generator=g,
                                                dtype=torch.uint8) for i in range(args.videos)}
    labels = {p: i % 2 for i, p in enumerate(sorted(clips))}
    cfg = SupervisedConfig(folds=2, epochs=10, grad_accum=args.grad_accum, num_workers=0, amp="off",
                           device=args.device)
    model_config = {"arch": args.arch, "chunk_size": args.chunk, "img_size": None}
    weights = torch.tensor([1.0, 1.0], device=device)

    dataset = MemoryDataset(clips, labels)
    paths = sorted(clips)
    source = ClipSource(dataset, paths, [labels[p] for p in paths])
    loader, sampler = make_loader(source, batch_size=1, num_workers=0, prefetch_factor=2, seed=0,
                                  pin_memory=device.type == "cuda")
    run_dir = Path("/tmp/fvc_bench_timm")
    job = Job(model_config, run_dir)
    progress = RunProgress(job.console, False, 1, cfg.epochs)
    env = Environment(device, None, loader, sampler, paths, {p: i for i, p in enumerate(paths)},
                      SkippedVideos(run_dir / "skipped.json", "fail"), 0, progress)
    parts = {"train": [(i, labels[p]) for i, p in enumerate(paths)], "val": [], "test": []}
    fold = FoldTraining(job, cfg, env, 0, parts, run_dir / "fold_0")
    fold._build()

    torch.manual_seed(0)
    bare = BareDetector(args.arch).to(device)
    optimizer = torch.optim.AdamW(bare.parameters(), lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(args.videos / cfg.grad_accum)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(2 * steps_per_epoch,
                                                                           cfg.epochs * steps_per_epoch))
    rng = np.random.default_rng(0)
    state = (optimizer, scheduler)
    bare_epoch(bare, clips, labels, list(rng.permutation(paths)), cfg, weights, state, device)  # warm-up
    fold.train_epoch(1)

    bare_rates, fvc_rates = [], []
    for r in range(args.repeats):
        t0 = time.perf_counter()
        n = bare_epoch(bare, clips, labels, list(rng.permutation(paths)), cfg, weights, state, device)
        bare_rates.append(n / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        fold.train_epoch(r + 2)
        if device.type == "cuda":
            torch.cuda.synchronize()
        fvc_rates.append(len(paths) / (time.perf_counter() - t0))
    b, f = statistics.median(bare_rates), statistics.median(fvc_rates)
    print(f"speed: timm {args.arch}, {args.videos} clips x ({args.frames}, 3, {args.size}, {args.size}) uint8 in "
          f"memory, batch 1, grad_accum {cfg.grad_accum}, chunk_size {args.chunk}, {args.device}, torch threads "
          f"{torch.get_num_threads()}, {args.repeats} interleaved epochs each")
    print(f"  bare loop : {b:.3f} clips/s  (epochs: {', '.join(f'{x:.3f}' for x in bare_rates)})")
    print(f"  fvc       : {f:.3f} clips/s  (epochs: {', '.join(f'{x:.3f}' for x in fvc_rates)})")
    print(f"  ratio fvc/bare (medians): {f / b:.3f}")


STEP = """
import json, re, sys, torch
from fvc_timm.model import TimmDetector

def status(field):  # kB in /proc/self/status
    return int(re.search(field + r":\\s+(\\d+) kB", open("/proc/self/status").read())[1]) * 1024

arch, frames, chunk, size, memory, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), \\
    sys.argv[5], sys.argv[6]
torch.manual_seed(0)
model = TimmDetector(arch, chunk_size=chunk, train_memory=memory).to(device).train()
x = torch.randint(0, 256, (1, frames, 3, size, size), dtype=torch.uint8).to(device)
if device == "cuda":
    torch.cuda.synchronize(); base = torch.cuda.memory_allocated(); torch.cuda.reset_peak_memory_stats()
else:
    open("/proc/self/clear_refs", "w").write("5")  # Linux: the peak (VmHWM) starts again from here
    base = status("VmRSS")
torch.nn.functional.cross_entropy(model(x), torch.tensor([1], device=device)).backward()
if device == "cuda":
    torch.cuda.synchronize(); peak = torch.cuda.max_memory_allocated()
else:
    peak = status("VmHWM")
print(json.dumps({"step_mib": (peak - base) / 2**20}))
"""


def memory(args: argparse.Namespace) -> None:
    measure = "max_memory_allocated" if args.device == "cuda" else "peak RSS"
    print(f"memory: one training step of timm {args.arch} at {args.size} px, chunk_size {args.chunk}, "
          f"{args.device} ({measure} over the step, less before it)")
    print(f"  {'frames':>6} {'bounded MiB':>12} {'unbounded MiB':>14}")
    for frames in args.memory_frames:
        row = []
        for mode in ("bounded", "unbounded"):
            out = subprocess.run([sys.executable, "-c", STEP, args.arch, str(frames), str(args.chunk), str(args.size),
                                  mode, args.device], capture_output=True, text=True,
                                 env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
            row.append(json.loads(out.stdout)["step_mib"] if out.returncode == 0 else float("nan"))
        print(f"  {frames:>6} {row[0]:>12.0f} {row[1]:>14.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--arch", default="resnet10t")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--grad-accum", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--memory-frames", type=int, nargs="*", default=[32, 500])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if not args.skip_speed:
        speed(args)
    if args.memory_frames:
        memory(args)


if __name__ == "__main__":
    main()
