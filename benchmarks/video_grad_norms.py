"""How often would clipping at max_grad_norm act? Gradient norms of the bare loop, one fold (issue 35).

    python benchmarks/video_grad_norms.py [--tag example] [--seed 0] [--fold 0] [--model mc3] [--epochs 4]

benchmarks/video_learnability.py's bare loop (no clipping, the model's own initialisation from
torch.manual_seed(seed)) on the train + val part of a fold of the fvc run tagged --tag (its
split.parquet and experiment.yaml under benchmarks/out), printing per epoch the median, smallest and
largest total gradient norm and how many steps are above 1.0 (the code's max_grad_norm).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", default="reverse")
    parser.add_argument("--model", default="mc3")
    parser.add_argument("--tag", default="example")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()

    import polars as pl
    import torch

    import fvc_core
    from fvc_core.config import load_config
    from fvc_core.plugins import get_registry

    torch.set_num_threads(1)
    run = ROOT / "benchmarks/out/video_learnability_runs" / f"{args.set}_{args.model}_{args.tag}" / f"s{args.seed}"
    config = load_config(run / "experiment.yaml", [])
    dataset = get_registry().create("datasets", config.data.name, config.data.config)
    split = pl.read_parquet(run / "runs" / args.model / f"fold_{args.fold}" / "split.parquet")
    split = split.filter(pl.col("part") != "test")
    paths, labels = split["video_path"].to_list(), split["label"].to_list()
    torch.manual_seed(args.seed)
    model = fvc_core.create_model(config.model.name, config.model.config.model_dump())
    trainer = config.trainer.config
    opt = torch.optim.AdamW(model.parameters(), lr=trainer.lr, betas=trainer.betas, weight_decay=trainer.weight_decay)
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        norms = []
        for j in torch.randperm(len(paths), generator=gen).tolist():
            clip = dataset.read_video(paths[j], augment=True, seed=epoch * 1000 + j)
            loss = torch.nn.functional.cross_entropy(model(clip[None]), torch.tensor([labels[j]]))
            loss.backward()
            norms.append(float(torch.nn.utils.clip_grad_norm_(model.parameters(), float("inf"))))  # measures only
            opt.step()
            opt.zero_grad()
        print(f"epoch {epoch + 1}: gradient norm median {statistics.median(norms):.2f}, smallest {min(norms):.2f}, "
              f"largest {max(norms):.2f}; {sum(n > 1 for n in norms)}/{len(norms)} steps above 1.0", flush=True)


if __name__ == "__main__":
    main()
