"""How much faster training reads the letterboxed copies of ``fvc prepare`` than the originals.

Makes a 720p and a 1080p H.264 clip (a panning textured scene, crf 23 as a
typical source), runs ``prepare`` on them to ``--size``, then times, side by
side and interleaved so that a busy machine slows both alike:

- ``read_clip``: one training clip (``--num-frames`` frames sampled over the
  video, letterboxed), what the trainer pays per video per epoch;
- full decode: every frame through ``iter_letterboxed_frames``, in frames/s.

Usage: .venv/bin/python benchmarks/prepare_throughput.py [--frames 90] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path


def make_source(path: Path, width: int, height: int, frames: int, fps: int = 30) -> Path:
    """A camera panning over a smooth random texture with fine grain, like footage: H.264 crf 23."""
    import av
    import numpy as np
    from fvc_loaders.synthetic import _smooth_noise

    rng = np.random.default_rng(0)
    canvas_h, canvas_w = height + frames * 4, width + frames * 4
    # Detail down to a few pixels, so that the 1080p source has a bit rate like real footage (MB/s).
    canvas = 128 + 60 * _smooth_noise(rng, canvas_h, canvas_w, 12) + 30 * _smooth_noise(rng, canvas_h, canvas_w, 80)
    canvas += 30 * _smooth_noise(rng, canvas_h, canvas_w, 400)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for i in range(frames):
            view = canvas[i * 3 : i * 3 + height, i * 4 : i * 4 + width]
            picture = np.clip(view + rng.normal(0, 6, view.shape), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def paired(fn_a, fn_b, repeats: int) -> tuple[float, float]:
    """Median seconds of ``fn_a`` and ``fn_b``, run alternately so that outside load hits both alike."""
    a, b = [], []
    for _ in range(repeats):
        for fn, times in ((fn_a, a), (fn_b, b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    return statistics.median(a), statistics.median(b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=90, help="frames per source clip (30 fps)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--num-frames", type=int, default=16, help="frames per training clip")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()

    import polars as pl
    import torch
    from fvc_loaders.prepare import Encoding, prepare
    from fvc_loaders.reader import iter_letterboxed_frames, probe, read_clip

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sources = {"720p": (1280, 720), "1080p": (1920, 1080)}
        for name, (w, h) in sources.items():
            make_source(root / f"{name}.mp4", w, h, args.frames)
        table = root / "metadata.parquet"
        pl.DataFrame({"video_path": [f"{n}.mp4" for n in sources], "label": ["real", "fake"]}).write_parquet(table)
        start = time.perf_counter()
        prepare(table, root / "scaled", encoding=Encoding(size=args.size), workers=1)
        prepare_s = time.perf_counter() - start

        print(f"prepare: {len(sources)} videos x {args.frames} frames to {args.size}px in {prepare_s:.1f} s "
              f"(one process)")
        print(f"{'video':>6} {'MB orig':>8} {'MB copy':>8} | {'read_clip orig':>15} {'copy':>8} {'ratio':>6} | "
              f"{'decode fps orig':>16} {'copy':>8} {'ratio':>6}")
        for name in sources:
            original, copy = root / f"{name}.mp4", root / "scaled" / f"{name}.mp4"
            assert probe(copy).frame_count == probe(original).frame_count
            clip_o, clip_c = paired(lambda o=original: read_clip(o, args.num_frames, args.size),
                                    lambda c=copy: read_clip(c, args.num_frames, args.size), args.repeats)
            full_o, full_c = paired(lambda o=original: sum(1 for _ in iter_letterboxed_frames(o, args.size)),
                                    lambda c=copy: sum(1 for _ in iter_letterboxed_frames(c, args.size)),
                                    args.repeats)
            mb = original.stat().st_size / 1e6, copy.stat().st_size / 1e6
            print(f"{name:>6} {mb[0]:8.2f} {mb[1]:8.2f} | {clip_o * 1000:13.0f}ms {clip_c * 1000:6.0f}ms "
                  f"{clip_o / clip_c:5.1f}x | {args.frames / full_o:16.0f} {args.frames / full_c:8.0f} "
                  f"{full_o / full_c:5.1f}x")


if __name__ == "__main__":
    main()
