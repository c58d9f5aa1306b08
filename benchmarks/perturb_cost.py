"""What ``fvc evaluate --perturb`` costs: reading a table's clips perturbed against reading them clean, with the
metadata dataset itself (what evaluation does per video, model excluded), and with the clip cache warm.

    .venv/bin/python benchmarks/perturb_cost.py [--width 640 --height 360 --seconds 4] [--repeats 3]

Makes --videos H.264 videos of moving texture with PyAV under --workdir (first use only), then times, per
video: the clean read (decode the clip's frames, scale, letterbox), each perturbed read (decode every
frame at source resolution, damage, write the temporary copy, read the clip from it), and a perturbed
read served by a warm ``data.cache``. Medians of --repeats; the ratio is perturbed / clean, side by side
on the same machine in the same process.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "loaders"))

SPECS = ("saturation:3", "noise:3", "blur:3", "pixelation:3", "resize:3", "compression:3", "c23")


def make_video(path: Path, width: int, height: int, seconds: float, fps: int = 25) -> Path:
    import av
    import numpy as np

    if path.exists():
        return path
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, size=(height, width * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, fps)
        stream.options = {"crf": "23", "preset": "veryfast"}
        for i in range(round(seconds * fps)):
            shift = (i * 4) % width
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(texture[:, shift:shift + width]), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def timed(read, paths: list[Path], repeats: int) -> float:
    """Median over repeats of the mean seconds per video."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for p in paths:
            read(str(p))
        runs.append((time.perf_counter() - start) / len(paths))
    return statistics.median(runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fvc_perturb_bench"))
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--frames", type=int, default=16, help="data.num_frames of the clip")
    parser.add_argument("--size", type=int, default=224, help="data.size of the clip")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--specs", nargs="+", default=list(SPECS))
    args = parser.parse_args()

    import polars as pl
    import torch
    from fvc_loaders.config import MetadataConfig
    from fvc_loaders.dataset import MetadataDataset
    from fvc_loaders.perturb import PerturbedDataset, parse_specs

    torch.set_num_threads(1)
    args.workdir.mkdir(parents=True, exist_ok=True)
    paths = [make_video(args.workdir / f"v{i}_{args.width}x{args.height}_{args.seconds:g}s.mp4", args.width,
                        args.height, args.seconds) for i in range(args.videos)]
    table = args.workdir / "table.parquet"
    pl.DataFrame({"video_path": [str(p) for p in paths], "label": [i % 2 for i in range(len(paths))]}
                 ).write_parquet(table)
    clean = MetadataDataset(MetadataConfig(metadata=table, num_frames=args.frames, size=args.size))
    base = timed(clean.read_video, paths, args.repeats)
    print(f"{args.videos} videos {args.width}x{args.height}, {args.seconds:g} s at 25 fps; clip {args.frames} frames "
          f"at {args.size}px; medians of {args.repeats}")
    print("| read | s / video | ratio to clean |")
    print("|---|---|---|")
    print(f"| clean | {base:.3f} | 1.0 |")
    cache_dir = args.workdir / "cache"
    for item in parse_specs(args.specs):
        perturbed = PerturbedDataset(clean, item)
        seconds = timed(perturbed.read_video, paths, args.repeats)
        print(f"| {item.name} | {seconds:.3f} | {seconds / base:.1f} |")
    # With data.cache on, a second evaluation under the same perturbation reads the kept clip.
    shutil.rmtree(cache_dir, ignore_errors=True)
    cached = MetadataDataset(MetadataConfig(metadata=table, num_frames=args.frames, size=args.size, cache=cache_dir))
    [item] = parse_specs([args.specs[0]])
    warm = PerturbedDataset(cached, item)
    timed(warm.read_video, paths, 1)  # fills the cache
    hit = timed(warm.read_video, paths, args.repeats)
    print(f"| {item.name}, cache warm | {hit:.3f} | {hit / base:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
