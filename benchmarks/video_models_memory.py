"""Peak memory of one training step of a video model on a long clip, windows recomputed or kept.

    python benchmarks/video_models_memory.py [--frames 16 64] [--window 8] [--size 64]

Each measurement runs in a fresh process (peak resident memory, ru_maxrss, less the process's
resident memory just before the step): one forward and backward of r2plus1d (blocks 1) on one clip.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

STEP = """
import json, resource, sys, torch
from fvc_video_models.model import VideoClassifier
torch.manual_seed(0)
frames, window, size, memory = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
model = VideoClassifier("r2plus1d", blocks=1, window=window, train_memory=memory).train()
x = torch.randint(0, 256, (1, frames, 3, size, size), dtype=torch.uint8)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
torch.nn.functional.cross_entropy(model(x), torch.tensor([1])).backward()
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"step_mib": (peak - before) / 1024}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--window", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    print(f"{'frames':>6} {'bounded MiB':>12} {'unbounded MiB':>14}")
    for frames in args.frames:
        row = []
        for memory in ("bounded", "unbounded"):
            out = subprocess.run([sys.executable, "-c", STEP, str(frames), str(args.window), str(args.size), memory],
                                 check=True, capture_output=True, text=True, env={"OMP_NUM_THREADS": "1"})
            row.append(json.loads(out.stdout)["step_mib"])
        print(f"{frames:>6} {row[0]:>12.0f} {row[1]:>14.0f}")


if __name__ == "__main__":
    main()
