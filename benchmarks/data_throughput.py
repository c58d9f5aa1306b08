"""Clips per second the trainer's DataLoader delivers for the seed's clip, beside the model's step time.

    .venv/bin/python benchmarks/data_throughput.py [--workers 0 1 2 4] [--videos 6] [--num-frames 500]

The seed's clip (examples/experiment.yaml): 500 frames sampled from a 20 s, 25 fps video already
letterboxed to 256 x 256 (what `fvc prepare` writes), read by the metadata dataset (PyAV). The
videos are made with the ffmpeg CLI (libx264, x264's default GOP and B-frames). Each worker count
gets the trainer's own loader (`fvc_core.training.data.make_loader`: persistent workers,
prefetch 2), starts its workers with a short warm-up pass, then reads every video --passes times;
clips/s is that pass's clips over its time, from the request to the last clip. Then naive_cnn
(chunk_size 10, as in the seed's config) trains on one such clip, forward and backward, on this
machine's CPU: a GPU is kept busy when the loader delivers at least 1 / (its step time) clips per
second.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_videos(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(count):
        path = folder / f"v{i}.mp4"
        if not path.exists():
            tmp = path.with_suffix(".tmp.mp4")
            # testsrc2 at 16:9, letterboxed to 256 x 256 like the copies `fvc prepare` writes.
            vf = "noise=alls=3:allf=t,pad=256:256:0:56"
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
                            "testsrc2=size=256x144:rate=25:duration=20", "-vf", vf,
                            "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p", str(tmp)],
                           check=True)
            tmp.rename(path)
        out.append(path)
    return out


def loader_rate(dataset, paths: list[str], workers: int, passes: int) -> tuple[float, float]:
    """(clips/s over a whole pass, seconds a warm-up pass took) of the trainer's loader.

    The warm-up pass starts the (persistent) workers; the timed pass then runs from the request
    to the last clip, so the pipeline's filling counts, as at the start of every epoch.
    """
    from fvc_core.training.data import ClipSource, Key, make_loader

    source = ClipSource(dataset, paths, [i % 2 for i in range(len(paths))])
    loader, sampler = make_loader(source, batch_size=1, num_workers=workers, prefetch_factor=2, seed=0,
                                  pin_memory=False)

    def one_pass(keys: list[Key]) -> float:
        sampler.keys = keys
        start = time.perf_counter()
        for batch in loader:
            assert batch.videos is not None and not batch.bad
        return time.perf_counter() - start

    warm = one_pass([Key(r % len(paths), False, 0) for r in range(max(workers, 1))])
    keys = [Key(r, False, 0) for _ in range(passes) for r in range(len(paths))]
    elapsed = one_pass(keys)
    return len(keys) / elapsed, warm  # the loader and its workers go with this frame


def step_seconds(num_frames: int, steps: int) -> float:
    """Median seconds of one naive_cnn training step (forward + backward + SGD) on one clip, on the CPU."""
    import statistics

    import torch

    from fvc_core import create_model

    model = create_model("naive_cnn", {"chunk_size": 10})
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    clip = torch.randint(0, 256, (1, num_frames, 3, 256, 256), dtype=torch.uint8)
    labels = torch.tensor([1])
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model(clip), labels)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2, 4])
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--passes", type=int, default=2)
    parser.add_argument("--num-frames", type=int, default=500)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fvc_data_throughput"))
    args = parser.parse_args()
    if not shutil.which("ffmpeg"):
        print("the videos are made with the ffmpeg command line; install it (apt-get install ffmpeg)")
        return 2

    import polars as pl
    import torch

    from fvc_core.plugins import get_registry

    videos = make_videos(args.workdir / "videos", args.videos)
    table = args.workdir / "table.parquet"
    pl.DataFrame({"video_path": [str(v) for v in videos], "label": [i % 2 for i in range(len(videos))]}
                 ).write_parquet(table)
    dataset = get_registry().create("datasets", "metadata", {"metadata": str(table), "num_frames": args.num_frames,
                                                             "size": 256})
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{args.videos} videos 256x256, 20 s at 25 fps; clips of {args.num_frames} frames; {cores} CPU cores, "
          f"load average {os.getloadavg()[0]:.1f}; torch {torch.__version__}")
    print("| num_workers | clips/s delivered | s per clip | warm-up pass (workers starting) |")
    print("|---|---|---|---|")
    paths = [str(v) for v in videos]
    for workers in args.workers:
        rate, first = loader_rate(dataset, paths, workers, args.passes)
        print(f"| {workers} | {rate:.2f} | {1 / rate:.2f} | {first:.1f} s |", flush=True)
    torch.set_num_threads(cores)
    step = step_seconds(args.num_frames, args.steps)
    print(f"\nnaive_cnn training step on one {args.num_frames}-frame clip, CPU ({cores} threads): {step:.2f} s "
          f"-> the model consumes {1 / step:.3g} clips/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
