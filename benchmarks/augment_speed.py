"""Speed of ``augment_clip``: the uint8 lookup-table version against the former float32 code, same clips.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/augment_speed.py            # 500 x 256 x 256 and 16 x 112 x 112
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/augment_speed.py --repeats 9

One torch thread, as in a DataLoader worker. For each size, old and new run interleaved on the same
random clip with the same seeds (a new seed each repeat, so both flips and all shifts come up); the
medians and their ratio are printed, and each pair of outputs is checked equal bit for bit.
The former code is the reference kept in tests/loaders/test_augment_equal.py.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fvc_loaders.augment import augment_clip  # noqa: E402

from tests.loaders.test_augment_equal import reference_augment_clip  # noqa: E402

SIZES = [(500, 256), (16, 112)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, {args.repeats} repeats, interleaved old/new")
    print(f"{'clip (T x 3 x S x S)':>22} {'old float32 s':>14} {'new LUT s':>10} {'old/new':>8}")
    for frames, size in SIZES:
        gen = torch.Generator().manual_seed(frames)
        clip = torch.randint(0, 256, (frames, 3, size, size), dtype=torch.uint8, generator=gen)
        augment_clip(clip, 0), reference_augment_clip(clip, 0)  # warm-up
        old, new = [], []
        for seed in range(1, args.repeats + 1):
            start = time.perf_counter()
            b = augment_clip(clip, seed)
            new.append(time.perf_counter() - start)
            start = time.perf_counter()
            a = reference_augment_clip(clip, seed)
            old.append(time.perf_counter() - start)
            if not torch.equal(a, b):
                raise SystemExit(f"seed {seed}: the new clip differs from the old one")
            del a, b
        o, n = statistics.median(old), statistics.median(new)
        print(f"{f'{frames} x 3 x {size} x {size}':>22} {o:>14.3f} {n:>10.3f} {o / n:>8.1f}")


if __name__ == "__main__":
    main()
