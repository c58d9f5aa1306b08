"""Share of training-step time spent waiting for data, with real decoding.

H.264 clips of 256 x 256 (what `fvc prepare` writes: letterboxed to 256) made by the
loaders plugin's synthetic generator, read by the ``metadata`` dataset plugin (PyAV,
uniform sampling, augmentation on), trained with naive_cnn through the supervised
trainer's own training pass. Each epoch's waiting time is the time the loop spent
blocked on the DataLoader for the next batch. num_workers 0 (decoding in the loop)
and num_workers 2 (decoding ahead, the default) are run side by side, interleaved.

    .venv/bin/python benchmarks/trainer_data_wait.py [--videos 8] [--num-frames 16] [--epochs 2]
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import torch
from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fvc_core import create_model  # noqa: E402
from fvc_core.plugins import get_registry  # noqa: E402
from fvc_core.tracking import RunInfo, Tracker  # noqa: E402
from fvc_core.training.config import SupervisedConfig  # noqa: E402
from fvc_core.training.data import ClipSource, make_loader  # noqa: E402
from fvc_core.training.loop import Environment, FoldTraining, SkippedVideos  # noqa: E402
from fvc_core.training.progress import RunProgress  # noqa: E402


class Job:
    def __init__(self, run_dir: Path, chunk_size: int):
        self.build_model = lambda: create_model("naive_cnn", {"chunk_size": chunk_size})
        self.trackers = Tracker()
        self.console = Console(file=io.StringIO())
        self.interactive = False
        self.run = RunInfo("bench", "b", {}, "h", "naive_cnn", run_dir, 1)


def fold_for(dataset, workers: int, run_dir: Path, epochs: int, chunk_size: int) -> FoldTraining:
    table = dataset.table().sort("video_path")
    paths, labels = table["video_path"].to_list(), table["label"].to_list()
    cfg = SupervisedConfig(folds=2, epochs=epochs, grad_accum=4, num_workers=workers)
    source = ClipSource(dataset, paths, labels)
    loader, sampler = make_loader(source, batch_size=1, num_workers=workers, prefetch_factor=cfg.prefetch_factor,
                                  seed=0, pin_memory=False)
    job = Job(run_dir, chunk_size)
    env = Environment(torch.device("cpu"), None, loader, sampler, paths, {p: i for i, p in enumerate(paths)},
                      SkippedVideos(run_dir / "skipped.json", "fail"), 0,
                      RunProgress(job.console, False, 1, epochs))
    parts = {"train": list(enumerate(labels)), "val": [], "test": []}
    fold = FoldTraining(job, cfg, env, 0, parts, run_dir / f"w{workers}")
    fold._build()
    return fold


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=8, help="real clips; as many fakes are made from them")
    parser.add_argument("--frames", type=int, default=32, help="frames encoded per clip")
    parser.add_argument("--num-frames", type=int, default=16, help="frames sampled per clip")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the training process")
    parser.add_argument("--root", default="/tmp/fvc_bench_data_wait")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from fvc_loaders.synthetic import make_synthetic_dataset

    root = Path(args.root)
    table = make_synthetic_dataset(root / "videos", videos=args.videos, frames=args.frames, frame_size=256, seed=0)
    dataset = get_registry().create("datasets", "metadata", {
        "metadata": str(table), "num_frames": args.num_frames, "size": 256, "group_column": "source_id"})

    folds = {w: fold_for(dataset, w, root, args.epochs, chunk_size=8) for w in (0, 2)}
    print(f"{2 * args.videos} clips of 256x256 H.264 ({args.frames} frames; {args.num_frames} sampled, augmented), "
          f"naive_cnn chunk_size 8, batch 1, grad_accum 4, torch threads {args.threads}, CPU")
    for epoch in range(1, args.epochs + 1):
        for workers, fold in folds.items():
            stats = fold.train_epoch(epoch)
            wait, total = stats["data_wait_seconds"], stats["epoch_seconds"]
            print(f"epoch {epoch} num_workers {workers}: {total:6.1f}s per epoch, {wait:5.2f}s waiting for data "
                  f"= {wait / total:5.1%} of step time ({total / len(fold.parts['train']):.2f}s per clip)")


if __name__ == "__main__":
    main()
