"""What face crops cost, and what they do to learning when the manipulation is in the face.

    .venv/bin/python benchmarks/faces.py [--part cost|learn|both] [--repeats 3] [--groups 24] [--epochs 6]

1. Cost: H.264 clips of 30 frames at 320x240, 640x480 and 1280x720 with a real face (scikit-image's
   astronaut, about a third of the frame high, drifting). Per frame: the built-in detector's ``detect``
   (median over the frames). Per video: ``prepare_faces`` (detect pass + crop pass) against plain
   ``prepare`` (letterbox), one process, median of ``--repeats``, run alternately.
2. Learning: ``--groups`` real clips (256x192, 12 frames, the head at a random place and size, 60-80 px,
   on random smooth backgrounds, mirrored at random) and one fake each: the same clip with a soft-edged
   elliptical region over the eyes and nose recoloured (channels rotated) and blended at 40 %. Both
   prepared at 64 px, whole frames (``fvc prepare``) and face crops (``fvc prepare --faces``), then the
   same ``fvc run`` of examples/experiment.yaml on each (naive_cnn, 3 group folds by source_id, 8 frames,
   ``--epochs``, no trackers): mean test ROC AUC and accuracy over the folds, side by side.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks/out"


def cost(repeats: int) -> None:
    from fvc_faces.detectors import build_detector
    from fvc_faces.prepare import prepare_faces
    from fvc_loaders.prepare import Encoding, prepare
    from fvc_loaders.reader import iter_frames

    from tests.faces.videos import face_video, moving

    detector = build_detector("opencv-haar")
    print(f"detector: {detector.version}")
    print(" video   | detect ms/frame | faces found | prepare --faces s/video | prepare s/video | ratio")
    with tempfile.TemporaryDirectory() as tmp:
        for width, height in ((320, 240), (640, 480), (1280, 720)):
            side = height / 3 / 0.56  # the face is 56 % of the head patch
            root = Path(tmp) / f"{width}"
            face_video(root / "real" / "a.mp4", moving(30, (width * 0.3, height * 0.5, side),
                                                        (width * 0.6, height * 0.45, side * 1.2)),
                       width=width, height=height, fps=30)
            import polars as pl

            table = root / "m.parquet"
            pl.DataFrame({"video_path": ["real/a.mp4"], "label": ["real"]}).write_parquet(table)
            frames = list(iter_frames(root / "real" / "a.mp4"))
            per_frame, found = [], 0
            for frame in frames:
                start = time.perf_counter()
                boxes = detector.detect(frame)
                per_frame.append(time.perf_counter() - start)
                found += bool(boxes)
            faces_s, plain_s = [], []
            for r in range(repeats):
                start = time.perf_counter()
                prepare_faces(table, root / f"faces{r}", encoding=Encoding(size=256), workers=0)
                faces_s.append(time.perf_counter() - start)
                start = time.perf_counter()
                prepare(table, root / f"plain{r}", encoding=Encoding(size=256), workers=0)
                plain_s.append(time.perf_counter() - start)
            f, p = statistics.median(faces_s), statistics.median(plain_s)
            print(f" {width}x{height:<4} | {1000 * statistics.median(per_frame):15.1f} | {found:>5}/{len(frames):<5} "
                  f"| {f:22.2f} | {p:15.2f} | {f / p:4.1f}x")


# -- the learning comparison ---------------------------------------------------------------------
W, H, FRAMES = 256, 192, 12


def _manipulate(frame: np.ndarray, face: tuple[float, float, float, float]) -> None:
    """A soft ellipse over the eyes and nose, its colours rotated (R<-G<-B<-R), blended at 40 %."""
    x0, y0, x1, y1 = face
    cx, cy = (x0 + x1) / 2, y0 + 0.45 * (y1 - y0)
    rx, ry = 0.32 * (x1 - x0), 0.25 * (y1 - y0)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    d = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2
    mask = 0.4 * np.clip(1.5 - d, 0, 1)[..., None]
    region = frame.astype(np.float32)
    swapped = region[..., [1, 2, 0]]
    frame[:] = np.clip(region * (1 - mask) + swapped * mask, 0, 255).astype(np.uint8)


def make_dataset(root: Path, groups: int, seed: int = 7) -> Path:
    import polars as pl

    from tests.faces.videos import face_video

    rng = np.random.default_rng(seed)
    rows = []
    for g in range(groups):
        side = rng.uniform(60, 80)
        start = (rng.uniform(side / 2 + 2, W - side / 2 - 2), rng.uniform(side / 2 + 2, H - side / 2 - 2))
        drift = rng.uniform(-2, 2, 2)
        path = []
        for i in range(FRAMES):
            cx = float(np.clip(start[0] + drift[0] * i, side / 2 + 1, W - side / 2 - 1))
            cy = float(np.clip(start[1] + drift[1] * i, side / 2 + 1, H - side / 2 - 1))
            path.append([(cx, cy, float(side))])
        boxes = face_video(root / "real" / f"{g:02d}.mp4", path, width=W, height=H)

        def edit(frame: np.ndarray, i: int, _boxes=boxes) -> None:
            _manipulate(frame, _boxes[i][0])

        face_video(root / "fake" / f"{g:02d}.mp4", path, width=W, height=H, edit=edit)
        rows += [(f"real/{g:02d}.mp4", "real", str(g)), (f"fake/{g:02d}.mp4", "fake", str(g))]
    table = root / "metadata.parquet"
    pl.DataFrame(rows, schema=["video_path", "label", "source_id"], orient="row").write_parquet(table)
    return table


def learn(groups: int, epochs: int) -> dict:
    from fvc_faces.prepare import prepare_faces
    from fvc_loaders.prepare import Encoding, prepare

    from fvc_core.config import load_config
    from fvc_core.runner import run_experiment

    root = OUT / "faces_learn"
    table = make_dataset(root / "data", groups)
    start = time.perf_counter()
    prepared = {"whole frames": prepare(table, root / "whole", encoding=Encoding(size=64)).table_path}
    middle = time.perf_counter()
    prepared["face crops"] = prepare_faces(table, root / "crops", encoding=Encoding(size=64)).table_path
    end = time.perf_counter()
    counts = json.loads((root / "crops" / "prepare.json").read_text())["faces"]["counts"]
    print(f"prepare: whole frames {middle - start:.1f} s, face crops {end - middle:.1f} s "
          f"(a re-run reuses finished files); face counts {counts}")
    results = {}
    for name, path in prepared.items():
        config = load_config(ROOT / "examples/experiment.yaml", [
            f"data.metadata={path}", "data.group_column=source_id", "data.num_frames=8", "data.size=64",
            "model.chunk_size=8", "trainer.folds=3", f"trainer.epochs={epochs}", "trainer.grad_accum=4",
            "trainer.warmup_epochs=1", "trainer.num_workers=0", "seed=0", "trackers=[]",
            f"output_dir={root / ('run_' + name.replace(' ', '_'))}"])
        start = time.perf_counter()
        summary = run_experiment(config)
        folds = sorted(summary.folds, key=lambda f: f.fold)
        results[name] = {"auc": [f.metrics["roc_auc"] for f in folds],
                         "accuracy": [f.metrics["accuracy"] for f in folds],
                         "seconds": time.perf_counter() - start}
    print(f"{groups} groups ({2 * groups} videos), 3 folds, {epochs} epochs, 8 frames at 64 px")
    for name, r in results.items():
        print(f"  {name:12s}: test AUC {statistics.mean(r['auc']):.3f} ({', '.join(f'{a:.2f}' for a in r['auc'])}), "
              f"accuracy {statistics.mean(r['accuracy']):.3f}, {r['seconds']:.0f} s")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "faces_learn.json").write_text(json.dumps(results, indent=1))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("cost", "learn", "both"), default="both")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--groups", type=int, default=24)
    parser.add_argument("--epochs", type=int, default=6)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.part in ("cost", "both"):
        cost(args.repeats)
    if args.part in ("learn", "both"):
        learn(args.groups, args.epochs)


if __name__ == "__main__":
    main()
