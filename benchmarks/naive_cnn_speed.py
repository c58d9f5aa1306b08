"""Training and inference speed of naive_cnn, side by side in one run (ratios).

    .venv/bin/python benchmarks/naive_cnn_speed.py [--frames 100] [--size 256] [--repeats 3] [--threads 2]

Training (one step: forward, cross-entropy, backward; batch 1, uint8 clip of T frames),
frames/s, every variant timed in turn within each repeat (interleaved, so a busy
machine slows all alike), medians reported, ratios against ``unbounded`` (same chunking,
one graph over all chunks, no recomputation, memory growing with T):

- ``bounded``: the default, each chunk backpropagated during the forward pass;
- ``recompute``: the two-pass scheme (forward keeping nothing, each chunk recomputed in backward);
- ``checkpoint``: plain ``torch.utils.checkpoint`` per chunk (use_reentrant=False), for reference;
- ``bounded, NCHW``: the default with contiguous (not channels-last) frames.

Inference (eval, no grad), frames/s against a bare ``nn.Sequential`` of the same layers in
eval mode, fed the same uint8 clip chunk by chunk (converted to [-1, 1] per chunk), with plain
NCHW chunks, with channels-last chunks, and with channels-last chunks and its BatchNorm layers
in training mode (per-chunk statistics, the textbook counterpart of ``norm_stats=clip``).
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from fvc_naive_cnn import clips as clip_module
from fvc_naive_cnn.chunked import chunk_bounds
from fvc_naive_cnn.clips import to_network_input
from fvc_naive_cnn.model import NaiveCNNBaseline
from torch import nn
from torch.utils.checkpoint import checkpoint


def checkpointed_step(model: NaiveCNNBaseline, x: torch.Tensor, label: torch.Tensor) -> None:
    frames = x[0]
    logits = [
        checkpoint(model._chunk_logits, to_network_input(frames[s:e], torch.float32), "update", use_reentrant=False)
        for s, e in chunk_bounds(frames.shape[0], model.chunk_size)
    ]
    F.cross_entropy(torch.cat(logits).mean(0, keepdim=True), label).backward()


def training_variants(models: dict[str, NaiveCNNBaseline], x, label) -> dict[str, Callable[[], None]]:
    def step(name: str, memory_format=torch.channels_last):
        def run():
            clip_module.MEMORY_FORMAT = memory_format
            try:
                models[name].zero_grad(set_to_none=True)
                F.cross_entropy(models[name](x), label).backward()
            finally:
                clip_module.MEMORY_FORMAT = torch.channels_last

        return run

    def ckpt():
        models["checkpoint"].zero_grad(set_to_none=True)
        checkpointed_step(models["checkpoint"], x, label)

    return {
        "unbounded": step("unbounded"),
        "bounded": step("bounded"),
        "recompute": step("recompute"),
        "checkpoint": ckpt,
        "bounded, NCHW": step("bounded_nchw", torch.contiguous_format),
    }


def bare_sequential(model: NaiveCNNBaseline) -> nn.Sequential:
    m = model
    return nn.Sequential(
        m.conv1,
        m.bn1,
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        m.conv2,
        m.bn2,
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        m.conv3,
        m.bn3,
        nn.ReLU(inplace=True),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        m.fc1,
        nn.ReLU(inplace=True),
        nn.Dropout(0.5),
        m.fc2,
    ).eval()


def inference_variants(model: NaiveCNNBaseline, x) -> dict[str, Callable[[], None]]:
    seq = bare_sequential(model)
    # The textbook way to get per-chunk statistics: BatchNorm modules left in training mode.
    seq_batch_stats = copy.deepcopy(seq)
    for layer in seq_batch_stats:
        if isinstance(layer, nn.BatchNorm2d):
            layer.train()
    chunk = model.chunk_size

    def bare(memory_format, seq=seq):
        def run():
            with torch.no_grad():
                out = [
                    seq(x[0, s:e].contiguous(memory_format=memory_format).float().mul_(2 / 255).sub_(1))
                    for s, e in chunk_bounds(x.shape[1], chunk)
                ]
                torch.cat(out).mean(0)

        return run

    def ours(norm_stats):
        def run():
            model.norm_stats = norm_stats
            with torch.no_grad():
                model(x)

        return run

    return {
        "bare Sequential, NCHW": bare(torch.contiguous_format),
        "bare Sequential, channels-last": bare(torch.channels_last),
        "bare Sequential, CL, batch-stat BN": bare(torch.channels_last, seq_batch_stats),
        "naive_cnn, norm_stats=running": ours("running"),
        "naive_cnn, norm_stats=clip": ours("clip"),
    }


def timed(variants: dict[str, Callable[[], None]], repeats: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in variants}
    for fn in variants.values():  # warm-up: oneDNN primitive creation, allocator
        fn()
    for _ in range(repeats):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def report(title: str, times: dict[str, list[float]], frames: int, reference: str) -> None:
    """Medians, and best runs: on a shared machine the fastest run is the least disturbed one."""
    print(f"\n{title}  (frames/s: median, best; ratios to {reference!r})")
    ref_median = frames / statistics.median(times[reference])
    ref_best = frames / min(times[reference])
    for name, ts in times.items():
        median, best = frames / statistics.median(ts), frames / min(ts)
        spread = ", ".join(f"{frames / t:.1f}" for t in ts)
        print(
            f"  {name:<36} median {median:7.1f} (ratio {median / ref_median:4.2f})"
            f"   best {best:7.1f} (ratio {best / ref_best:4.2f})   runs: {spread}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--inference-repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-training", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randint(0, 256, (1, args.frames, 3, args.size, args.size), dtype=torch.uint8)
    label = torch.tensor([1])
    print(
        f"machine: {platform.machine()}, torch {torch.__version__}, threads {args.threads}, "
        f"T={args.frames}, {args.size}x{args.size}, chunk_size 10, batch 1, uint8 input, "
        f"repeats {args.repeats} (inference {args.inference_repeats})"
    )

    if not args.skip_training:
        models = {}
        for name in ("unbounded", "bounded", "recompute", "checkpoint", "bounded_nchw"):
            torch.manual_seed(0)
            memory = {"checkpoint": "unbounded", "bounded_nchw": "bounded"}.get(name, name)
            models[name] = NaiveCNNBaseline(train_memory=memory).train()
        report("training step", timed(training_variants(models, x, label), args.repeats), args.frames, "unbounded")

    model = NaiveCNNBaseline().eval()
    times = timed(inference_variants(model, x), args.inference_repeats)
    report("inference", times, args.frames, "bare Sequential, NCHW")


if __name__ == "__main__":
    main()
