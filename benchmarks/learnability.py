"""Does fvc's trainer learn as well as a bare PyTorch loop of the same model, on data nobody tuned it to?

    python benchmarks/learnability.py [--seeds 0 1 2] [--epochs 15] [--grad-accum 4] [--tag NAME]
                                      [--no-bare] [extra key=value overrides for fvc]

1. Makes a real/fake dataset (once, under benchmarks/out/learnability_data) with a generator of
   its own, independent of the quickstart's (fvc_loaders.synthetic): other scenes (plasma
   interference, drifting rectangles, panned value noise, rotating rings, with camera motion and
   grain), other manipulations (a soft-edged colour shift plus one of a blending seam, local blur,
   local sharpening or temporal flicker) and another encoding route (PyAV's MPEG-4 Part 2 encoder
   in an AVI container, 128x96, 12 fps, 2 s, instead of H.264 in MP4). 24 groups: a scene and its
   fake, 48 videos.
2. For each seed: fvc's 5-fold group-aware CV through the real registry and runner
   (examples/experiment.yaml, 8 frames at 64 px, no trackers), then a bare loop of the same
   NaiveCNN on the SAME folds (read back from each fold's split.parquet): the same epochs, lr,
   AdamW, accumulation and clipping, constant lr, trained on the whole training part (train +
   val), last epoch kept, scored with the model's eval() on the fold's test part.
3. Writes benchmarks/out/learnability_<tag>.json as it goes (per seed: the fold AUCs of both) and
   prints mean test AUC per seed and over seeds, with the spread.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks/out"
WIDTH, HEIGHT, FPS, SECONDS = 128, 96, 12, 2


# -- the dataset ---------------------------------------------------------------------------------
def _scene(kind: int, rng: np.random.Generator, frames: int) -> np.ndarray:
    """float32 (T, H, W, 3) in 0-255 of one of four scene kinds, with a camera pan and grain."""
    pad = 24
    h, w = HEIGHT + 2 * pad, WIDTH + 2 * pad
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    colours = rng.uniform(40, 215, (3, 3)).astype(np.float32)
    pan = rng.uniform(-1.5, 1.5, 2)
    out = np.empty((frames, HEIGHT, WIDTH, 3), np.float32)
    if kind == 2:
        coarse = rng.uniform(0, 1, (frames // 4 + 3, 8, 10, 3)).astype(np.float32)
    if kind == 1:
        rects = [(rng.uniform(0, w), rng.uniform(0, h), rng.uniform(8, 30), rng.uniform(8, 30),
                  rng.uniform(-2, 2), rng.uniform(-2, 2), rng.uniform(30, 225, 3)) for _ in range(7)]
    freqs = rng.uniform(0.03, 0.12, (3, 2))
    for t in range(frames):
        if kind == 0:  # plasma: interfering moving sinusoids, one colour per wave
            img = np.zeros((h, w, 3), np.float32)
            for k in range(3):
                wave = np.sin(freqs[k, 0] * xx + freqs[k, 1] * yy + 0.3 * t * (k + 1))
                img += (0.5 + 0.5 * wave)[..., None] * colours[k] / 3
            img = img * 1.4
        elif kind == 1:  # drifting rectangles over a gradient
            img = (xx / w)[..., None] * colours[0] + (1 - xx / w)[..., None] * colours[1]
            for x0, y0, rw, rh, vx, vy, c in rects:
                x, y = (x0 + vx * t) % w, (y0 + vy * t) % h
                img[int(y):int(y + rh), int(x):int(x + rw)] = c
        elif kind == 2:  # value noise, bilinearly upsampled, blended over time
            from scipy.ndimage import zoom

            a = coarse[t // 4]
            b = coarse[t // 4 + 1]
            mix = (t % 4) / 4
            small = (1 - mix) * a + mix * b
            img = zoom(small, (h / small.shape[0], w / small.shape[1], 1), order=1) * 200 + 25
        else:  # rotating rings
            cx, cy = w / 2 + 10 * math.sin(0.2 * t), h / 2
            r = np.hypot(xx - cx, yy - cy)
            ang = np.arctan2(yy - cy, xx - cx) + 0.15 * t
            img = (0.5 + 0.5 * np.sin(0.4 * r + 3 * ang))[..., None] * colours[0] + \
                (0.5 + 0.5 * np.cos(0.25 * r))[..., None] * colours[1] * 0.5
        ox = int(pad + pan[0] * t) % (2 * pad)
        oy = int(pad + pan[1] * t) % (2 * pad)
        out[t] = img[oy:oy + HEIGHT, ox:ox + WIDTH]
    out += rng.normal(0, 4, out.shape).astype(np.float32)
    return out


def _manipulate(frames: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """A fake: a soft-edged, slowly moving patch, colour-shifted, plus one more artefact."""
    from scipy.ndimage import gaussian_filter

    t_n = frames.shape[0]
    fake = frames.copy()
    radius = rng.uniform(20, 28)
    cx, cy = rng.uniform(30, WIDTH - 30), rng.uniform(25, HEIGHT - 25)
    vx, vy = rng.uniform(-0.6, 0.6, 2)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    shift = rng.uniform(22, 40, 3) * rng.choice([-1, 1], 3)
    extra = str(rng.choice(["seam", "blur", "sharpen", "flicker"]))
    for t in range(t_n):
        d = np.hypot((xx - cx - vx * t) / radius, (yy - cy - vy * t) / (radius * 0.8))
        soft = np.clip((1.2 - d) / 0.4, 0, 1)[..., None]  # soft edge over 40 % of the radius
        patch = fake[t] + shift
        if extra == "seam":
            # Content pasted from elsewhere in the frame, with a harder edge: a blending seam.
            patch = np.roll(fake[t], (7, -11), (0, 1)) + shift
            soft = np.clip((1.05 - d) / 0.1, 0, 1)[..., None]
        elif extra == "blur":
            patch = gaussian_filter(fake[t], (1.6, 1.6, 0)) + shift
        elif extra == "sharpen":
            patch = fake[t] + 1.5 * (fake[t] - gaussian_filter(fake[t], (1.5, 1.5, 0))) + shift
        elif extra == "flicker":
            patch = patch + (28 if t % 2 else -28)
        fake[t] = soft * patch + (1 - soft) * fake[t]
    return fake, extra


def _encode(frames: np.ndarray, path: Path) -> None:
    import av

    with av.open(str(path), "w", format="avi") as out:
        stream = out.add_stream("mpeg4", rate=Fraction(FPS))
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = 1_200_000
        for frame in np.clip(frames, 0, 255).astype(np.uint8):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def make_dataset(root: Path, groups: int = 24, seed: int = 1234) -> Path:
    """root/metadata.parquet (video_path, label, source, manipulation); kept when it exists."""
    import polars as pl

    table = root / "metadata.parquet"
    if table.exists():
        return table
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        frames = _scene(g % 4, rng, FPS * SECONDS)
        fake, extra = _manipulate(frames, rng)
        for label, clip in (("real", frames), ("fake", fake)):
            name = f"{label}_{g:02d}.avi"
            _encode(clip, root / name)
            rows.append({"video_path": name, "label": label, "source": f"scene{g:02d}",
                         "manipulation": extra if label == "fake" else ""})
    pl.DataFrame(rows).write_parquet(table)
    return table


# -- the two trainers ----------------------------------------------------------------------------
def run_fvc(table: Path, seed: int, out_dir: Path, epochs: int, grad_accum: int, extra: list[str]):
    from fvc_core.config import load_config
    from fvc_core.runner import run_experiment

    overrides = [f"data.metadata={table}", "data.group_column=source", "data.num_frames=8", "data.size=64",
                 "model.chunk_size=8", f"trainer.epochs={epochs}", f"trainer.grad_accum={grad_accum}",
                 "trainer.num_workers=0", f"seed={seed}", f"output_dir={out_dir}", "trackers=[]", *extra]
    config = load_config(ROOT / "examples/experiment.yaml", overrides)
    summary = run_experiment(config)
    folds = sorted(summary.folds, key=lambda f: f.fold)
    best = [json.loads((Path(f.fold_dir) / "metrics.json").read_text())["best_epoch"] for f in folds]
    return config, [(f.fold_dir, f.metrics["roc_auc"], b) for f, b in zip(folds, best, strict=True)]


def run_bare(config, fold_dirs: list[Path], seed: int) -> list[float]:
    """The same NaiveCNN, a plain loop: AdamW at constant lr, accumulation, clipping, last epoch."""
    import polars as pl
    import torch
    from sklearn.metrics import roc_auc_score

    import fvc_core
    from fvc_core.plugins import get_registry

    trainer = config.trainer.config
    data_cfg = config.data.config.model_copy(update={"augment": False})
    dataset = get_registry().create("datasets", config.data.name, data_cfg)
    cache: dict[str, torch.Tensor] = {}

    def clip(path: str) -> torch.Tensor:
        if path not in cache:
            cache[path] = dataset.read_video(path)
        return cache[path]

    aucs = []
    for k, fold_dir in enumerate(fold_dirs):
        split = pl.read_parquet(fold_dir / "split.parquet")
        train = split.filter(pl.col("part") != "test")
        test = split.filter(pl.col("part") == "test")
        torch.manual_seed(seed * 100 + k)
        model = fvc_core.create_model(config.model.name, config.model.config.model_dump())
        opt = torch.optim.AdamW(model.parameters(), lr=trainer.lr, betas=trainer.betas,
                                weight_decay=trainer.weight_decay)
        paths, labels = train["video_path"].to_list(), train["label"].to_list()
        gen = torch.Generator().manual_seed(seed * 100 + k)
        accum = trainer.grad_accum
        for _epoch in range(trainer.epochs):
            model.train()
            order = torch.randperm(len(paths), generator=gen).tolist()
            opt.zero_grad()
            for i, j in enumerate(order):
                group = min(accum, len(order) - (i // accum) * accum)
                loss = torch.nn.functional.cross_entropy(model(clip(paths[j])[None]), torch.tensor([labels[j]]))
                (loss / group).backward()
                if (i + 1) % accum == 0 or i + 1 == len(order):
                    torch.nn.utils.clip_grad_norm_(model.parameters(), trainer.max_grad_norm or math.inf)
                    opt.step()
                    opt.zero_grad()
        model.eval()
        with torch.no_grad():
            scores = [torch.softmax(model(clip(p)[None]).float(), 1)[0, 1].item() for p in test["video_path"]]
        aucs.append(float(roc_auc_score(test["label"].to_list(), scores)))
    return aucs


def _mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--grad-accum", type=int, default=4)
    parser.add_argument("--tag", default="defaults")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-bare", action="store_true",
                        help="fvc only; the bare loop's results of an earlier run are reported when there are some")
    parser.add_argument("overrides", nargs="*", help="key=value overrides for fvc's side only")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    table = make_dataset(OUT / "learnability_data")
    print(f"dataset: {table} ({time.perf_counter() - t0:.1f} s)", flush=True)
    result_path = OUT / f"learnability_{args.tag}.json"
    result = {"command": f"python benchmarks/learnability.py --seeds {' '.join(map(str, args.seeds))} --epochs "
                         f"{args.epochs} --grad-accum {args.grad_accum} --tag {args.tag} {' '.join(args.overrides)}",
              "overrides": args.overrides, "seeds": {}}
    for seed in args.seeds:
        bare_path = OUT / f"learnability_bare_s{seed}_e{args.epochs}_a{args.grad_accum}.json"
        t0 = time.perf_counter()
        config, folds = run_fvc(table, seed, OUT / f"learnability_runs/{args.tag}/s{seed}", args.epochs,
                                args.grad_accum, args.overrides)
        fvc_s = time.perf_counter() - t0
        fvc_auc = [a for _, a, _ in folds]
        if args.no_bare:
            bare_auc = json.loads(bare_path.read_text())["auc"] if bare_path.exists() else []
            bare_s = None
        else:
            t0 = time.perf_counter()
            bare_auc = run_bare(config, [d for d, _, _ in folds], seed)
            bare_s = time.perf_counter() - t0
            bare_path.write_text(json.dumps({"auc": bare_auc, "seconds": bare_s}))
        result["seeds"][str(seed)] = {"fvc_auc": fvc_auc, "best_epochs": [e for _, _, e in folds],
                                      "bare_auc": bare_auc, "fvc_seconds": fvc_s, "bare_seconds": bare_s}
        result_path.write_text(json.dumps(result, indent=1))
        bare = _mean_sd(bare_auc) if bare_auc else "not run"
        print(f"seed {seed}: fvc {_mean_sd(fvc_auc)} (best epochs {[e for _, _, e in folds]}, {fvc_s:.0f} s)  "
              f"bare {bare}", flush=True)
    fvc_means = [statistics.mean(s["fvc_auc"]) for s in result["seeds"].values()]
    bare_means = [statistics.mean(s["bare_auc"]) for s in result["seeds"].values() if s["bare_auc"]]
    result["fvc_mean"] = statistics.mean(fvc_means)
    line = f"over seeds: fvc {_mean_sd(fvc_means)}"
    if len(bare_means) == len(fvc_means):
        result["bare_mean"] = statistics.mean(bare_means)
        line += f"  bare {_mean_sd(bare_means)}  gap {result['fvc_mean'] - result['bare_mean']:+.3f}"
    result_path.write_text(json.dumps(result, indent=1))
    print(line)


if __name__ == "__main__":
    main()
