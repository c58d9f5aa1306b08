"""The quickstart, measured: wall time end to end, the share spent decoding, and what per-clip
BatchNorm statistics are worth against running ones on the very same weights.

    python benchmarks/quickstart.py [--out benchmarks/out/quickstart] [extra key=value overrides]

1. Generates the synthetic dataset into a fresh folder (timed).
2. Runs examples/quickstart.yaml with num_workers=0 and no trackers, so every decode happens in
   this process and is timed: wall time, decoding time, the rest (training and evaluation).
3. Scores each fold's held-out videos with its best checkpoint twice, norm_stats=clip (default)
   and norm_stats=running, and reports the mean test ROC AUC of both.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default=str(ROOT / "benchmarks/out/quickstart"))
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)

    import torch
    from fvc_loaders.dataset import MetadataDataset
    from sklearn.metrics import roc_auc_score

    import fvc_core
    from fvc_core.config import load_config
    from fvc_core.runner import run_experiment
    from fvc_core.training.checkpoint import load_safe

    overrides = [f"data.root={out}/data", f"output_dir={out}/runs", "trackers=[]",
                 "trainer.num_workers=0", *args.overrides]
    config = load_config(ROOT / "examples/quickstart.yaml", overrides)

    decode = {"seconds": 0.0, "clips": 0}
    original = MetadataDataset.read_video

    def timed_read(self, path, **kwargs):
        t0 = time.perf_counter()
        try:
            return original(self, path, **kwargs)
        finally:
            decode["seconds"] += time.perf_counter() - t0
            decode["clips"] += 1

    MetadataDataset.read_video = timed_read

    from fvc_core.plugins import get_registry

    t0 = time.perf_counter()
    get_registry().create("datasets", config.data.name, config.data.config).table()
    generate_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    summary = run_experiment(config)
    train_s = time.perf_counter() - t0
    decode_train = dict(decode)

    # The same weights scored two ways.
    dataset = get_registry().create("datasets", config.data.name, config.data.config)
    model_cfg = config.model.config.model_dump()
    aucs: dict[str, list[float]] = {"clip": [], "running": []}
    for fold in summary.folds:
        import polars as pl

        split = pl.read_parquet(fold.fold_dir / "split.parquet").filter(pl.col("part") == "test")
        state = load_safe(fold.fold_dir / "model.pt")["model_state_dict"]
        clips = [dataset.read_video(p) for p in split["video_path"]]
        for mode in aucs:
            model = fvc_core.create_model(config.model.name, {**model_cfg, "norm_stats": mode})
            model.load_state_dict(state)
            model.eval()
            with torch.no_grad():
                scores = [torch.softmax(model(c[None]), 1)[0, 1].item() for c in clips]
            aucs[mode].append(roc_auc_score(split["label"].to_list(), scores))

    total = generate_s + train_s
    print(f"config: examples/quickstart.yaml {' '.join(overrides)}")
    print(f"generate data      {generate_s:7.1f} s")
    print(f"cross-validation   {train_s:7.1f} s  (5 folds, {decode_train['clips']} clips decoded)")
    print(f"  decoding         {decode_train['seconds']:7.1f} s  ({decode_train['seconds'] / train_s:.0%} of the run)")
    print(f"  the rest         {train_s - decode_train['seconds']:7.1f} s  (training, evaluation, outputs)")
    print(f"total              {total:7.1f} s")
    test_auc = [f.metrics["roc_auc"] for f in summary.folds]
    print(f"mean test ROC AUC (trainer) {statistics.mean(test_auc):.3f} ± {statistics.stdev(test_auc):.3f}  "
          f"folds {', '.join(f'{a:.2f}' for a in test_auc)}")
    for mode, values in aucs.items():
        print(f"mean test ROC AUC norm_stats={mode:8s} {statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
              f"  folds {', '.join(f'{a:.2f}' for a in values)}")


if __name__ == "__main__":
    main()
