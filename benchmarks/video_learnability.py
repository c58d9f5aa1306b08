"""Does fvc train a video model (R(2+1)D, MC3, ...) as well as a bare PyTorch loop of the same network, on
fakes that only the order of frames tells? The video-model side of benchmarks/learnability.py (issue 35).

    python benchmarks/video_learnability.py --set flicker --model r2plus1d [--seeds 0 1] [--epochs 8]
        [--groups 12] [--folds 3] [--tag NAME] [--example] [--no-bare] [key=value overrides for fvc only]
    python benchmarks/video_learnability.py --summary TAG [TAG ...]   # the table over seeds

Three temporal-only sets of its own (made once under benchmarks/out/video_learnability/<set>):

- ``flicker``: benchmarks/temporal_fakes.py's clips: a moving texture whose brightness alternates
  every second frame in a real clip (low low high high), every frame in a fake (low high low high),
  here by +-40 grey levels (LEVEL; temporal_fakes.py's +-24 was not learned by the bare loop in 8
  epochs of 16 videos: 0.479). A real and a fake are different textures (one group each).
- ``reverse``: a texture sliding in a random direction while it brightens by 2 * RAMP grey levels over
  the clip; its fake is the SAME frames played backwards (it darkens). A real and its fake form one
  group.
- ``swap``: a texture sliding 3 px a frame; its fake is the SAME frames with each adjacent pair
  swapped (1 0 3 2 5 4 ...): every frame of a fake is a frame of its real, only their order differs
  (the motion jerks back and forth). A real and its fake form one group. Not learned by the bare
  loop at this budget (0.500, 8 epochs, 16 videos): kept for longer runs, not in the tables.

Per seed: fvc's k-fold group-aware CV through the real registry and runner (``data.sampler: window``,
``clip_len: 8``, ``clips_per_video: 2``, ``size: 32``, batch 1 (``grad_accum: 1``, as the quickstart),
lr 1e-3, the issue's ``early_stopping: {patience: 4, metric: val_loss}`` unless overridden; with
``--example``, the trainer settings of examples/video.yaml instead), then a bare loop of the same
network on the SAME folds (read back from each fold's split.parquet): AdamW at fvc's lr, betas and
weight decay, constant lr, no clipping, no class weights, trained on the whole training part (train +
val), one random window a video an epoch (fvc's own reader), last epoch kept, scored with eval() as the
mean fake probability of the 2 evenly placed windows. Results: benchmarks/out/video_learnability_<tag>.json
(per seed and fold: both AUCs, the chosen epoch, wall seconds); the bare loop's are cached per set, model,
seed, epochs, groups and folds, so fvc variants reuse them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks/out"
sys.path.insert(0, str(ROOT / "benchmarks"))

from learnability import _mean_sd  # noqa: E402
from temporal_fakes import write_clip  # noqa: E402

SIZE, FRAMES, FPS, STEP, RAMP, LEVEL = 32, 16, 12, 3, 20, 40


def _write_frames(path: Path, frames: list[np.ndarray]) -> None:
    from fractions import Fraction

    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width = stream.height = SIZE
        stream.pix_fmt = "yuv420p"
        stream.options = {"qp": "0"}  # lossless: nothing but the order can differ
        stream.time_base = Fraction(1, FPS)
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def _swap_pair(root: Path, index: int, rng: np.random.Generator) -> list[dict]:
    """A sliding texture and its fake: the same frames, each adjacent pair swapped."""
    coarse = rng.uniform(40, 215, (SIZE // 4, SIZE // 4, 3))
    texture = np.kron(coarse, np.ones((8, 8, 1)))  # 2 * SIZE square, tiled by the slide
    dy, dx = rng.choice([-1, 1], 2) * rng.integers(1, STEP + 1, 2)
    frames = []
    for t in range(FRAMES):
        y, x = (t * dy) % SIZE, (t * dx) % SIZE
        frames.append(np.clip(texture[y:y + SIZE, x:x + SIZE], 0, 255).astype(np.uint8))
    order = [t ^ 1 for t in range(FRAMES)]  # 1 0 3 2 ...
    rows = []
    for label, clip in ((0, frames), (1, [frames[t] for t in order])):
        path = root / ("fake" if label else "real") / f"{index:03d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_frames(path, clip)
        rows.append({"video_path": str(path), "label": label, "group": f"{index:03d}"})
    return rows


def _reverse_pair(root: Path, index: int, rng: np.random.Generator) -> list[dict]:
    """A sliding texture that brightens steadily, and its fake: the same frames played backwards
    (it darkens; the slide's direction is random, so only the brightness ramp's sign tells)."""
    coarse = rng.uniform(70, 185, (SIZE // 4, SIZE // 4, 3))
    texture = np.kron(coarse, np.ones((8, 8, 1)))
    dy, dx = rng.choice([-1, 1], 2) * rng.integers(1, STEP + 1, 2)
    frames = []
    for t in range(FRAMES):
        y, x = (t * dy) % SIZE, (t * dx) % SIZE
        ramp = RAMP * (2 * t / (FRAMES - 1) - 1)
        frames.append(np.clip(texture[y:y + SIZE, x:x + SIZE] + ramp, 0, 255).astype(np.uint8))
    rows = []
    for label, clip in ((0, frames), (1, frames[::-1])):
        path = root / ("fake" if label else "real") / f"{index:03d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_frames(path, clip)
        rows.append({"video_path": str(path), "label": label, "group": f"{index:03d}"})
    return rows


def make_set(name: str, groups: int, seed: int = 0) -> Path:
    import polars as pl

    root = OUT / "video_learnability" / f"{name}_g{groups}"
    table = root / "metadata.parquet"
    if table.is_file():
        return table
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    for i in range(groups):
        if name == "swap":
            rows += _swap_pair(root, i, rng)
        elif name == "reverse":
            rows += _reverse_pair(root, i, rng)
        else:
            for fake in (False, True):
                path = root / ("fake" if fake else "real") / f"{i:03d}.mp4"
                path.parent.mkdir(parents=True, exist_ok=True)
                write_clip(path, rng, fake, LEVEL)
                rows.append({"video_path": str(path), "label": int(fake), "group": f"{i:03d}-{int(fake)}"})
    pl.DataFrame(rows).write_parquet(table)
    return table


def fvc_config(table: Path, model: str, seed: int, args: argparse.Namespace, out_dir: Path) -> dict:
    return {
        "experiment": "video-learnability", "seed": seed, "output_dir": str(out_dir),
        "data": {"name": "metadata", "metadata": str(table), "group_column": "group", "sampler": "window",
                 "clip_len": 8, "clips_per_video": 2, "size": SIZE},
        "model": {"name": model, "blocks": 1},
        "trainer": {"name": "supervised", "folds": args.folds, "epochs": args.epochs, "batch_size": 1,
                    "grad_accum": 1, "lr": 1e-3, "num_workers": 0,
                    "early_stopping": {"patience": 4, "metric": "val_loss"}},
        "trackers": [],
    }


def example_config(table: Path, model: str, seed: int, args: argparse.Namespace, out_dir: Path) -> dict:
    """examples/video.yaml as a user copies it, on this benchmark's data, size, folds and epochs."""
    import yaml

    config = yaml.safe_load((ROOT / "examples/video.yaml").read_text())
    base = fvc_config(table, model, seed, args, out_dir)
    config.update(seed=seed, output_dir=str(out_dir), trackers=[], model=base["model"])
    config["data"].update(base["data"])
    config["trainer"].update(folds=args.folds, epochs=args.epochs, num_workers=0)
    return config


def run_fvc(table: Path, model: str, seed: int, args: argparse.Namespace, out_dir: Path):
    import yaml

    from fvc_core.config import load_config
    from fvc_core.runner import run_experiment

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "experiment.yaml"
    make = example_config if args.example else fvc_config
    path.write_text(yaml.safe_dump(make(table, model, seed, args, out_dir / "runs")))
    config = load_config(path, args.overrides)
    summary = run_experiment(config)
    folds = sorted(summary.folds, key=lambda f: f.fold)
    rows = []
    for f in folds:
        metrics = json.loads((Path(f.fold_dir) / "metrics.json").read_text())
        history = json.loads((Path(f.fold_dir) / "history.json").read_text())
        rows.append({"fold_dir": str(f.fold_dir), "auc": f.metrics["roc_auc"], "best_epoch": metrics["best_epoch"],
                     "epochs_run": len(history), "train_loss": [round(h["train_loss"], 3) for h in history],
                     "val_loss": [round(h["val_loss"], 3) for h in history]})
    return config, rows


def run_bare(config, fold_dirs: list[str], seed: int, max_grad_norm: float | None = None) -> list[dict]:
    """The same network in a plain loop on each fold's whole training part: see the module docstring.
    ``max_grad_norm``: clip as fvc's trainer does (one change to the loop, to measure clipping alone)."""
    import polars as pl
    import torch
    from sklearn.metrics import roc_auc_score

    import fvc_core
    from fvc_core.plugins import get_registry

    trainer = config.trainer.config
    dataset = get_registry().create("datasets", config.data.name, config.data.config)
    results = []
    for k, fold_dir in enumerate(fold_dirs):
        split = pl.read_parquet(Path(fold_dir) / "split.parquet")
        train = split.filter(pl.col("part") != "test")
        test = split.filter(pl.col("part") == "test")
        torch.manual_seed(seed * 100 + k)
        model = fvc_core.create_model(config.model.name, config.model.config.model_dump())
        opt = torch.optim.AdamW(model.parameters(), lr=trainer.lr, betas=trainer.betas,
                                weight_decay=trainer.weight_decay)
        paths, labels = train["video_path"].to_list(), train["label"].to_list()
        gen = torch.Generator().manual_seed(seed * 100 + k)
        losses = []
        for epoch in range(trainer.epochs):
            model.train()
            total = 0.0
            for j in torch.randperm(len(paths), generator=gen).tolist():
                clip = dataset.read_video(paths[j], augment=True, seed=(seed * 1000 + epoch) * 1000 + j)
                loss = torch.nn.functional.cross_entropy(model(clip[None]), torch.tensor([labels[j]]))
                loss.backward()
                if max_grad_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
                opt.step()
                opt.zero_grad()
                total += float(loss.detach())
            losses.append(round(total / len(paths), 3))
        model.eval()
        with torch.no_grad():
            scores = [torch.softmax(model(dataset.read_video(p)).float(), 1)[:, 1].mean().item()
                      for p in test["video_path"]]
        results.append({"auc": float(roc_auc_score(test["label"].to_list(), scores)), "train_loss": losses})
    return results


def summarise(tags: list[str]) -> None:
    """One line per set and model over every seed the runs tagged ``tags`` hold: fvc, bare, paired gap."""
    per: dict[tuple[str, str], dict[str, dict]] = {}
    for tag in tags:
        for path in sorted(OUT.glob(f"video_learnability_*_{tag}.json")):
            set_name, model = path.stem.removeprefix("video_learnability_").removesuffix(f"_{tag}").split("_", 1)
            if "_" in model:
                continue  # a longer tag that ends like this one (fix_refit for refit)
            per.setdefault((set_name, model), {}).update(json.loads(path.read_text())["seeds"])
    print(f"{'set':<9}{'model':<10}{'seeds':<7}{'fvc':>7}{'bare':>7}  paired gap (mean ± sd over seeds)")
    for (set_name, model), seeds in sorted(per.items()):
        paired = {k: v for k, v in seeds.items() if v["bare_auc"]}
        fvc = [statistics.mean(v["fvc_auc"]) for v in paired.values()]
        bare = [statistics.mean(v["bare_auc"]) for v in paired.values()]
        gaps = [f - b for f, b in zip(fvc, bare, strict=True)]
        print(f"{set_name:<9}{model:<10}{','.join(paired):<7}{statistics.mean(fvc):>7.3f}"
              f"{statistics.mean(bare):>7.3f}  {_mean_sd(gaps)}  per seed {[round(g, 3) for g in gaps]}")


def main() -> None:
    if sys.argv[1:2] == ["--summary"]:
        summarise(sys.argv[2:])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", choices=["flicker", "reverse", "swap"], default="flicker")
    parser.add_argument("--model", default="r2plus1d")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--groups", type=int, default=12)
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--tag", default="defaults")
    parser.add_argument("--example", action="store_true",
                        help="fvc's side from examples/video.yaml (its trainer settings) instead of the issue's")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-bare", action="store_true", help="fvc only; cached bare-loop results are reported")
    parser.add_argument("--bare-clip", type=float, default=None, metavar="NORM",
                        help="the bare loop clips gradients to this norm (fvc's max_grad_norm); cached apart")
    parser.add_argument("--bare-only", metavar="TAG", default=None,
                        help="run only the bare loop, on the folds (and config) of the fvc run tagged TAG")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for fvc's side only")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    table = make_set(args.set, args.groups)
    name = f"{args.set}_{args.model}_{args.tag}"
    result_path = OUT / f"video_learnability_{name}.json"
    result = {"command": "python benchmarks/video_learnability.py " + " ".join(sys.argv[1:]), "seeds": {}}
    for seed in args.seeds:
        clip = "" if args.bare_clip is None else f"_clip{args.bare_clip:g}"
        bare_path = OUT / (f"video_learnability_bare_{args.set}_{args.model}_s{seed}_e{args.epochs}_g{args.groups}"
                           f"_k{args.folds}{clip}.json")
        t0 = time.perf_counter()
        if args.bare_only:
            from fvc_core.config import load_config

            run = OUT / "video_learnability_runs" / f"{args.set}_{args.model}_{args.bare_only}" / f"s{seed}"
            config = load_config(run / "experiment.yaml", [])
            folds = [{"fold_dir": str(run / "runs" / args.model / f"fold_{k}"), "auc": None, "best_epoch": None}
                     for k in range(args.folds)]
        else:
            config, folds = run_fvc(table, args.model, seed, args, OUT / "video_learnability_runs" / name / f"s{seed}")
        fvc_s = time.perf_counter() - t0
        bare, bare_s = [], None
        if bare_path.exists():
            cached = json.loads(bare_path.read_text())
            bare, bare_s = cached["folds"], cached["seconds"]
        elif not args.no_bare:
            t0 = time.perf_counter()
            bare = run_bare(config, [f["fold_dir"] for f in folds], seed, args.bare_clip)
            bare_s = time.perf_counter() - t0
            bare_path.write_text(json.dumps({"folds": bare, "seconds": bare_s}))
        bare_auc = [b["auc"] for b in bare]
        if args.bare_only:  # no fvc side: the bare loop's cache file is the result
            print(f"bare{clip} {args.set} {args.model} seed {seed}: {_mean_sd(bare_auc)} per fold {bare_auc} "
                  f"({bare_s or 0:.0f} s; {bare_path.name})", flush=True)
            continue
        fvc_auc = [f["auc"] for f in folds]
        result["seeds"][str(seed)] = {"fvc_auc": fvc_auc, "bare_auc": bare_auc, "fvc_folds": folds, "bare_folds": bare,
                                      "fvc_seconds": fvc_s, "bare_seconds": bare_s}
        result_path.write_text(json.dumps(result, indent=1))
        print(f"{name} seed {seed}: fvc {_mean_sd(fvc_auc)} (chosen epochs {[f['best_epoch'] for f in folds]}, "
              f"{fvc_s:.0f} s)  bare {_mean_sd(bare_auc) if bare_auc else 'not run'} ({bare_s or 0:.0f} s)",
              flush=True)
    if args.bare_only:
        return
    seeds = result["seeds"].values()
    fvc_means = [statistics.mean(s["fvc_auc"]) for s in seeds]
    line = f"{name} over seeds: fvc {_mean_sd(fvc_means)}"
    if all(s["bare_auc"] for s in seeds):
        gaps = [statistics.mean(s["fvc_auc"]) - statistics.mean(s["bare_auc"]) for s in seeds]
        result.update(fvc_mean=statistics.mean(fvc_means), bare_mean=statistics.mean(
            statistics.mean(s["bare_auc"]) for s in seeds), gap_mean=statistics.mean(gaps), gaps=gaps)
        line += f"  bare {result['bare_mean']:.3f}  paired gap {_mean_sd(gaps)}"
    result_path.write_text(json.dumps(result, indent=1))
    print(line, flush=True)


if __name__ == "__main__":
    main()
