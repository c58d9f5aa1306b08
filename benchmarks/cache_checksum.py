"""What checking a data.cache entry costs per read, against the decode a hit saves.

    .venv/bin/python benchmarks/cache_checksum.py [--frames 16 500] [--size 256] [--repeats 5]

Makes one 640x480 H.264 video (25 fps, 20 s of moving noise) with PyAV under --workdir (no ffmpeg
CLI needed), then per clip length: decoding it (no cache), a cache hit (read + checksum + parse), and
the checksum alone over the entry's bytes. Hits read what the page cache holds, so the checksum's
share is the largest it can be; from a cold disk the read itself dominates. Medians, seconds per video.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

import av
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "loaders"))

from fvc_loaders import cache as clip_cache  # noqa: E402
from fvc_loaders.config import MetadataConfig  # noqa: E402
from fvc_loaders.dataset import MetadataDataset  # noqa: E402


def make_video(path: Path, seconds: int = 20, fps: int = 25) -> Path:
    if path.exists():
        return path
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (480 + 64, 640 + 64, 3), dtype=np.uint8)
    tmp = path.with_name(f".{path.name}.tmp.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "x264-params": "keyint=250:bframes=3"}
        for i in range(seconds * fps):
            y, x = (i * 3) % 64, (i * 2) % 64  # a moving picture: inter frames with real content
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[y:y + 480, x:x + 640]), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    tmp.rename(path)
    return path


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fvc_cache_checksum_bench"))
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 500])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    args.workdir.mkdir(parents=True, exist_ok=True)
    video = make_video(args.workdir / "640x480_gop250_3B.mp4")
    table = args.workdir / "table.parquet"
    pl.DataFrame({"video_path": [str(video), str(video) + ".none"], "label": [0, 1]}).write_parquet(table)

    print("| frames | entry MB | decode (no cache) | hit: read + check + parse | of which checksum | check / decode |")
    print("|---|---|---|---|---|---|")
    for num in args.frames:
        cache_dir = args.workdir / "cache"
        if cache_dir.exists():
            shutil.rmtree(cache_dir)  # made by this script, under its own workdir
        keys = {"metadata": table, "num_frames": num, "size": args.size}
        plain = MetadataDataset(MetadataConfig(**keys))
        cached = MetadataDataset(MetadataConfig(**keys, cache=cache_dir))
        cached.read_video(str(video))  # epoch 1: decode + write
        entry = cached._cache.entry(video, cached.clip_settings())
        npy = entry.read_bytes()[clip_cache._PREFIX:]
        decode = timed(lambda d=plain: d.read_video(str(video)), max(1, args.repeats // 2))
        hit = timed(lambda d=cached: d.read_video(str(video)), args.repeats)
        check = timed(lambda e=entry, b=npy: clip_cache._checksum(e, b), args.repeats)
        print(f"| {num} | {entry.stat().st_size / 1e6:.1f} | {decode:.3f} | {hit:.4f} | {check:.4f} | "
              f"{check / decode:.1%} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
