"""What data.cache saves: reading a table's clips in epoch 1 (decode + write) and epoch 2+ (cache hits)
against decoding every time, with the metadata dataset itself.

    .venv/bin/python benchmarks/clip_cache.py [--frames 16 500] [--repeats 3]

Uses the files of benchmarks/loader_decode.py (made with the ffmpeg CLI on first use, under
/tmp/fvc_loader_bench) and a cache under --workdir. Epoch 2 reads entries the page cache may still
hold (as on a machine with memory to spare); the entry size printed gives the disk read a cold
epoch needs instead. Medians of --repeats, seconds per video.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "plugins" / "loaders"))

from fvc_loaders.config import MetadataConfig  # noqa: E402
from fvc_loaders.dataset import MetadataDataset  # noqa: E402
from loader_decode import VIDEOS, make_video  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos-dir", type=Path, default=Path("/tmp/fvc_loader_bench"))
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fvc_clip_cache_bench"))
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 500])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--only", nargs="+", default=["480p_gop250_3B", "720p_gop30_3B", "1080p_gop60_2B"])
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    args.videos_dir.mkdir(parents=True, exist_ok=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in args.only:
        w, h, x264 = VIDEOS[name]
        paths.append(make_video(args.videos_dir / f"{name}.mp4", w, h, x264, vfr="vfr" in name))
    table = args.workdir / "table.parquet"
    pl.DataFrame({"video_path": [str(p) for p in paths], "label": [i % 2 for i in range(len(paths))]}
                 ).write_parquet(table)

    print("| file | frames | decode (no cache) | epoch 1 (decode + write) | epoch 2+ (hit) | entry MB |")
    print("|---|---|---|---|---|---|")
    for num in args.frames:
        for path in paths:
            plain = MetadataDataset(MetadataConfig(metadata=table, num_frames=num, size=args.size))
            times: dict[str, list[float]] = {"decode": [], "first": [], "hit": []}
            for _ in range(args.repeats):
                cache_dir = args.workdir / "cache"
                if cache_dir.exists():
                    shutil.rmtree(cache_dir)  # made by this script, under its own workdir
                cached = MetadataDataset(MetadataConfig(metadata=table, num_frames=num, size=args.size,
                                                        cache=cache_dir))
                for key, data in (("decode", plain), ("first", cached), ("hit", cached)):
                    start = time.perf_counter()
                    data.read_video(str(path))
                    times[key].append(time.perf_counter() - start)
            entry = cached._cache.entry(path, cached.clip_settings())
            med = {k: statistics.median(v) for k, v in times.items()}
            print(f"| {path.stem} | {num} | {med['decode']:.3f} | {med['first']:.3f} | {med['hit']:.4f} | "
                  f"{entry.stat().st_size / 1e6:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
