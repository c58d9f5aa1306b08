"""Peak memory of one naive_cnn training step as the clip grows.

    .venv/bin/python benchmarks/naive_cnn_memory.py [--frames 100 500 1000] [--size 256] [--threads 2]

Each measurement runs in a fresh subprocess: import torch and the model, read
``ru_maxrss`` (baseline), make a uint8 clip (1, T, 3, size, size), read it again,
run one training step (forward, cross-entropy, backward), read the peak. Reported:

- ``step``: peak minus the baseline after imports (the clip itself included);
- ``step - clip``: peak minus the level after the clip was made (what the step adds).

``train_memory=bounded`` (default) and ``recompute`` at every T; ``unbounded`` (one graph over
all chunks, what an unchunked-in-memory step costs) only at small T, since it grows by
tens of MB per frame.

``--mmap-threshold BYTES`` runs the children with ``MALLOC_MMAP_THRESHOLD_`` set: glibc then
stops raising its mmap threshold as large blocks are freed, so freed chunk activations go back
to the system instead of fragmenting the heap (the default allocator's high-water mark creeps
up by 100-250 MB over the first chunks, then stays).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys


def child(mode: str, frames: int, size: int, threads: int, chunk_size: int) -> dict:
    import torch
    import torch.nn.functional as F
    from fvc_naive_cnn.model import NaiveCNNBaseline

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = NaiveCNNBaseline(chunk_size=chunk_size, train_memory=mode).train()
    kb = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # noqa: E731 - KiB on Linux
    base = kb()
    clip = torch.randint(0, 256, (1, frames, 3, size, size), dtype=torch.uint8)
    with_clip = kb()
    F.cross_entropy(model(clip), torch.tensor([1])).backward()
    peak = kb()
    assert model.conv1.weight.grad is not None
    return {
        "mode": mode,
        "frames": frames,
        "step_mb": (peak - base) / 1024,
        "step_minus_clip_mb": (peak - with_clip) / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--unbounded-frames", type=int, nargs="*", default=[10, 20])
    parser.add_argument("--modes", nargs="+", default=["bounded", "recompute"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--chunk-size", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mmap-threshold", type=int, default=None, metavar="BYTES")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "FRAMES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, frames = args.child
        print(json.dumps(child(mode, int(frames), args.size, args.threads, args.chunk_size)))
        return

    runs = [(m, t) for m in args.modes for t in args.frames] + [("unbounded", t) for t in args.unbounded_frames]
    results = []
    for mode, frames in runs:
        cmd = [
            sys.executable,
            __file__,
            "--child",
            mode,
            str(frames),
            "--size",
            str(args.size),
            "--threads",
            str(args.threads),
            "--chunk-size",
            str(args.chunk_size),
        ]
        env = dict(os.environ)
        if args.mmap_threshold is not None:
            env["MALLOC_MMAP_THRESHOLD_"] = str(args.mmap_threshold)
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = results[-1]
        print(
            f"{mode:>10} T={frames:>5}: step {r['step_mb']:8.0f} MB   step - clip {r['step_minus_clip_mb']:8.0f} MB",
            flush=True,
        )

    print(
        f"\nmachine: {platform.processor() or platform.machine()}, torch threads {args.threads}, "
        f"{args.size}x{args.size}, chunk_size {args.chunk_size}, batch 1, uint8 input, "
        f"MALLOC_MMAP_THRESHOLD_={args.mmap_threshold if args.mmap_threshold is not None else 'unset'}"
    )
    for mode in args.modes:
        rows = {r["frames"]: r for r in results if r["mode"] == mode}
        lo, hi = min(rows), max(rows)
        if lo != hi:
            print(
                f"{mode}: mem({hi})/mem({lo}) = {rows[hi]['step_mb'] / rows[lo]['step_mb']:.2f} "
                f"(without the clip: {rows[hi]['step_minus_clip_mb'] / rows[lo]['step_minus_clip_mb']:.2f})"
            )
    plain = sorted((r["frames"], r["step_minus_clip_mb"]) for r in results if r["mode"] == "unbounded")
    if len(plain) >= 2:
        (t0, m0), (t1, m1) = plain[0], plain[-1]
        per_frame = (m1 - m0) / (t1 - t0)
        print(f"unbounded: {per_frame:.1f} MB per frame -> ~{per_frame * 1000 / 1024:.0f} GB at T=1000")


if __name__ == "__main__":
    main()
