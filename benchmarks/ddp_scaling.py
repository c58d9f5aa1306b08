"""One fold on 1 against 2 data-parallel workers (``trainer.workers_per_fold``), and the scaling expected on GPUs.

1. measured: the real ``fvc run`` of naive_cnn on synthetic clips (``--videos`` real and as many fake,
   ``--frames`` frames of ``--size`` px), 2 folds of ``--epochs`` epochs, the same global batch on both
   sides: ``workers_per_fold: 1, grad_accum: 4`` against ``workers_per_fold: 2, grad_accum: 2`` (batch 1),
   ``num_threads: auto`` (one process gets every CPU, each of two ranks half of them). Runs alternate
   (1, 2, 1, 2, ...) so that a change of the machine's load hits both. Reported per run: wall time of the
   command, and the training seconds of the fold's epochs (``epoch_seconds`` in history.json: training
   only, without the ranks' start-up and validation); the ratio 1-worker / 2-worker of their medians;
   the load average before and after.
2. on paper: per optimiser step, the compute of one rank (forward + backward = 3 x the forward's FLOPs,
   per video, x batch x grad_accum) against the gradient every rank all-reduces once per step (fp32, 4
   bytes a parameter; a ring all-reduce moves 2 (N-1)/N of it through each GPU's link), for the field's
   models at the sizes fvc trains them, on stated device throughputs and link bandwidths.

    .venv/bin/python benchmarks/ddp_scaling.py                 # measured + on paper
    .venv/bin/python benchmarks/ddp_scaling.py --paper-only

Writes benchmarks/out/ddp_scaling.json (work folder benchmarks/out/ddp_scaling/).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
WORK = OUT / "ddp_scaling"

# Published sizes: parameters and forward GFLOPs (multiply-adds x 2) of one input as fvc feeds it.
MODELS = {
    # timm's efficientnet_b4 (model card: 19.3 M params, 4.5 GMACs at 380 x 380): per frame, 16 frames a video.
    "efficientnet_b4 (16 frames of 380 px per video)": {"params": 19.3e6, "forward_gflops": 2 * 4.5 * 16},
    # torchvision's r2plus1d_18 (docs: 31.5 M params, 40.5 GFLOPs per 16 x 112 x 112 clip).
    "r2plus1d_18 (one 16 x 112 x 112 clip per video)": {"params": 31.5e6, "forward_gflops": 40.5},
}
# What a GPU sustains on these models (fp16/bf16 autocast; depthwise and 3-D convolutions are far from
# the tensor cores' peak), and what its links move: assumptions, stated, not measured here.
DEVICE_TFLOPS = {"A100": 60.0, "H100": 120.0}
LINKS_GBPS = {"NVLink (one node, NCCL bus bandwidth)": 200.0, "PCIe 4 x16 (one node)": 20.0,
              "InfiniBand HDR 200 Gb/s (across nodes)": 20.0}


def paper(batch: int = 1, grad_accum: int = 16, workers: int = 4) -> list[dict[str, object]]:
    """Predicted time of one step's compute and of its all-reduce, and the efficiency without any overlap."""
    rows = []
    for model, size in MODELS.items():
        step_tflop = 3 * size["forward_gflops"] * batch * grad_accum / 1e3
        grad_gb = size["params"] * 4 / 1e9
        moved_gb = 2 * (workers - 1) / workers * grad_gb
        for device, tflops in DEVICE_TFLOPS.items():
            compute_s = step_tflop / tflops
            for link, gbps in LINKS_GBPS.items():
                comm_s = moved_gb / gbps
                rows.append({"model": model, "device": device, "link": link, "workers": workers,
                             "per_rank_step": f"batch {batch} x grad_accum {grad_accum}",
                             "compute_s": round(compute_s, 4), "gradient_gb": round(grad_gb, 4),
                             "all_reduce_s": round(comm_s, 4),
                             "efficiency": round(compute_s / (compute_s + comm_s), 3)})
    return rows


def _config(data: Path, out: Path, workers: int, epochs: int, frames: int, size: int) -> dict[str, object]:
    return {"experiment": "ddp_scaling", "seed": 0, "output_dir": str(out),
            "data": {"name": "metadata", "metadata": str(data), "num_frames": frames, "size": size},
            "model": {"name": "naive_cnn", "chunk_size": frames},
            "trainer": {"name": "supervised", "folds": 2, "epochs": epochs, "warmup_epochs": 1, "batch_size": 1,
                        "grad_accum": 4 // workers, "workers_per_fold": workers, "num_workers": 0,
                        "early_stopping": {"patience": None}},
            "trackers": ["console"]}


def measured(repeats: int, videos: int, frames: int, size: int, epochs: int) -> dict[str, object]:
    from fvc_loaders.synthetic import make_synthetic_dataset

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    data = make_synthetic_dataset(WORK / "videos", videos=videos, frames=frames, frame_size=size, seed=0)
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    env["CI"] = "1"
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    load_before = os.getloadavg()
    for attempt in range(repeats):
        for workers in (1, 2):
            out = WORK / f"w{workers}_{attempt}"
            config = WORK / f"w{workers}_{attempt}.yaml"
            config.write_text(yaml.safe_dump(_config(data, out, workers, epochs, frames, size)))
            t0 = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "fvc_core.cli", "run", str(config)], env=env,
                                  capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if done.returncode != 0:
                raise SystemExit(done.stdout + done.stderr)
            history = json.loads((out / "naive_cnn" / "fold_0" / "history.json").read_text())
            runs[workers].append({"wall_s": round(wall, 2),
                                  "fold0_train_s": round(sum(row["epoch_seconds"] for row in history), 2),
                                  "torch_threads": history[0]["torch_threads"],
                                  "fold0_train_loss_last": history[-1]["train_loss"]})
            print(workers, runs[workers][-1], flush=True)
    median = {w: {k: statistics.median(r[k] for r in rs) for k in ("wall_s", "fold0_train_s")}
              for w, rs in runs.items()}
    return {"videos": 2 * videos, "frames": frames, "size": size, "epochs": epochs, "cpus": os.cpu_count(),
            "load_average_before": load_before, "load_average_after": os.getloadavg(), "runs": runs,
            "median": median,
            "ratio_1_over_2_wall": round(median[1]["wall_s"] / median[2]["wall_s"], 3),
            "ratio_1_over_2_fold0_train": round(median[1]["fold0_train_s"] / median[2]["fold0_train_s"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paper-only", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--videos", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    result: dict[str, object] = {"paper": paper()}
    if not args.paper_only:
        result["measured"] = measured(args.repeats, args.videos, args.frames, args.size, args.epochs)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "ddp_scaling.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
