"""Is what is left between fvc and the bare loop in fvc's path, or in the draw? (issue 35, mc3 on reverse)

    python benchmarks/video_replica.py --set reverse --model mc3 --tag ex_asbare --seed 1 --fold 0 [--clip 1.0]

benchmarks/video_learnability.py's bare loop, with fvc's random draws instead of its own: the initial
weights from the seed fvc's fold seeds its model with, fvc's epoch order and fvc's window seeds, trained
on train + val (the refit's videos) for --epochs epochs, clipping only with --clip, scored as the bare
loop scores (eval(), mean fake probability of the evenly placed windows). It reads the fold's
split.parquet and experiment.yaml from the fvc run tagged --tag (under benchmarks/out). When it prints
the training losses and test AUC of that run's refit (metrics.json: refit_train_loss, roc_auc), the
loop and fvc's path agree on everything but the draw; a paired gap between fvc and the bare loop is
then the draw's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", default="reverse")
    parser.add_argument("--model", default="mc3")
    parser.add_argument("--tag", required=True, help="the fvc run (video_learnability.py --tag) whose fold to replay")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--clip", type=float, default=None, help="clip gradients to this norm (fvc's max_grad_norm)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import polars as pl
    import torch
    from sklearn.metrics import roc_auc_score

    import fvc_core
    from fvc_core.config import load_config
    from fvc_core.plugins import get_registry
    from fvc_core.training.data import clip_seed, epoch_order
    from fvc_core.training.loop import _seed_everything

    torch.set_num_threads(args.threads)
    run = ROOT / "benchmarks/out/video_learnability_runs" / f"{args.set}_{args.model}_{args.tag}" / f"s{args.seed}"
    config = load_config(run / "experiment.yaml", [])
    dataset = get_registry().create("datasets", config.data.name, config.data.config)
    split = pl.read_parquet(run / "runs" / args.model / f"fold_{args.fold}" / "split.parquet")
    # fvc's rows: the run's videos sorted by path (trainer._plan); the refit trains on train then val.
    paths = sorted(split["video_path"].to_list())
    row_of = {p: i for i, p in enumerate(paths)}
    label_of = dict(zip(split["video_path"], split["label"], strict=True))
    rows = [row_of[p] for part in ("train", "val") for p in split.filter(pl.col("part") == part)["video_path"]]
    # FoldTraining._build seeds this before building the model, in the selection and the refit alike.
    _seed_everything(clip_seed(args.seed, args.fold, 0, 2**31 - 1))
    model = fvc_core.create_model(config.model.name, config.model.config.model_dump())
    trainer = config.trainer.config
    opt = torch.optim.AdamW(model.parameters(), lr=trainer.lr, betas=trainer.betas, weight_decay=trainer.weight_decay)
    losses = []
    for epoch in range(1, args.epochs + 1):
        model.train()
        total = 0.0
        for row in epoch_order(rows, args.seed, args.fold, epoch):
            clip = dataset.read_video(paths[row], augment=True, seed=clip_seed(args.seed, args.fold, epoch, row))
            loss = torch.nn.functional.cross_entropy(model(clip[None]), torch.tensor([label_of[paths[row]]]))
            loss.backward()
            if args.clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            opt.zero_grad()
            total += float(loss.detach())
        losses.append(round(total / len(rows), 3))
    model.eval()
    test = split.filter(pl.col("part") == "test")
    with torch.no_grad():
        scores = [torch.softmax(model(dataset.read_video(p)).float(), 1)[:, 1].mean().item()
                  for p in test["video_path"]]
    auc = roc_auc_score(test["label"].to_list(), scores)
    print(f"{args.set} {args.model} seed {args.seed} fold {args.fold} (fvc's draws, clip {args.clip}): "
          f"training loss {losses}, test AUC {auc:.4f}")


if __name__ == "__main__":
    main()
