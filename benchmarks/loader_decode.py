"""Decode speed of the fvc PyAV reader, side by side with decord and a plain PyAV loop.

    .venv/bin/python benchmarks/loader_decode.py            # writes its videos under /tmp/fvc_loader_bench
    .venv/bin/python benchmarks/loader_decode.py --every-frame   # also (b), every frame vs the ffmpeg CLI

Makes a set of H.264 files with the ffmpeg command line (libx264, 20 s at 25 fps,
testsrc2 with a little temporal noise, about 2-6 Mbit/s): GOP 12 to 250, 480p to
1080p, with and without B-frames, and one variable-frame-rate file. Then times, in
one run and interleaved (medians of --repeats after a warm-up):

(a) clips of 16, 64 and 500 frames letterboxed to 256: ``read_clip`` against decord
    (``VideoReader(width=, height=, num_threads=2)`` + ``get_batch``, padded the
    same way) and a plain PyAV loop that decodes straight on up to the last frame
    wanted and converts only the kept ones;
(b) with --every-frame, every frame letterboxed to 256: ``iter_letterboxed_frames``
    against ``ffmpeg -threads 2 -i F -vf scale=W:H,pad=256:256:X:Y -pix_fmt rgb24 -f null -``.

decord and ffmpeg are benchmark peers only, never dependencies of fvc; a peer
that is missing is reported as such. Ratios are fvc time / peer time (below 1:
fvc is faster); the last line gives the geometric mean of fvc/decord.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "loaders"))

from fvc_loaders.letterbox import fit, pad  # noqa: E402
from fvc_loaders.reader import iter_letterboxed_frames, probe, read_clip  # noqa: E402

# name: (width, height, x264 options); every file 20 s at 25 fps (500 frames, fewer for the VFR one).
VIDEOS = {
    "480p_gop12_noB": (640, 480, ["-g", "12", "-bf", "0"]),
    "480p_gop250_3B": (640, 480, ["-g", "250", "-keyint_min", "250", "-sc_threshold", "0", "-bf", "3"]),
    "720p_gop30_3B": (1280, 720, ["-g", "30", "-bf", "3"]),
    "720p_gop250_3B": (1280, 720, ["-g", "250", "-keyint_min", "250", "-sc_threshold", "0", "-bf", "3"]),
    "1080p_gop60_2B": (1920, 1080, ["-g", "60", "-bf", "2"]),
    "1080p_gop25_noB": (1920, 1080, ["-g", "25", "-bf", "0"]),
    "720p_vfr_gop60_3B": (1280, 720, ["-g", "60", "-bf", "3"]),
}
SECONDS, FPS = 20, 25
# The VFR file keeps frames 0-19 of every 50 and a third of the rest: bursts at 25 fps, then stills.
VFR_SELECT = "select='lt(mod(n\\,50)\\,20)+not(mod(n\\,3))'"


def make_video(path: Path, width: int, height: int, x264: list[str], vfr: bool) -> Path:
    """An H.264 MP4 made by the ffmpeg CLI; kept between runs (the name says what it holds)."""
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp.mp4")
    vf = "noise=alls=3:allf=t" + (f",{VFR_SELECT}" if vfr else "")
    command = ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i",
               f"testsrc2=size={width}x{height}:rate={FPS}:duration={SECONDS}", "-vf", vf,
               *(["-fps_mode", "vfr"] if vfr else []), "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
               *x264, "-pix_fmt", "yuv420p", str(tmp)]
    subprocess.run(command, check=True)
    tmp.rename(path)
    return path


# --- the contenders --------------------------------------------------------------------------------


def sample_indices(frame_count: int, num: int) -> list[int]:
    """The reader's rule for a constant-rate file: the frame on screen at the centre of each slice."""
    return [int((k + 0.5) * frame_count / num) for k in range(num)]


def fvc_clip(path: Path, num: int, size: int) -> None:
    read_clip(path, num, size)


def naive_pyav_clip(path: Path, num: int, size: int) -> None:
    """Decode every frame up to the last one wanted; convert only the kept ones."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        wanted = sample_indices(stream.frames, num)
        w, h = fit(stream.width, stream.height, size)
        kept = []
        for i, frame in enumerate(container.decode(stream)):
            while len(kept) < num and wanted[len(kept)] == i:
                kept.append(pad(frame.reformat(width=w, height=h, format="rgb24").to_ndarray(), size))
            if len(kept) == num:
                break
        np.stack(kept)


def decord_clip(path: Path, num: int, size: int) -> None:
    import decord

    width, height = _size_of(path)
    w, h = fit(width, height, size)
    reader = decord.VideoReader(str(path), width=w, height=h, num_threads=2)
    batch = reader.get_batch(sample_indices(len(reader), num)).asnumpy()
    np.stack([pad(frame, size) for frame in batch])


def fvc_every_frame(path: Path, size: int) -> int:
    return sum(1 for _ in iter_letterboxed_frames(path, size))


def ffmpeg_every_frame_command(path: Path, size: int) -> list[str]:
    width, height = _size_of(path)
    w, h = fit(width, height, size)
    vf = f"scale={w}:{h},pad={size}:{size}:{(size - w) // 2}:{(size - h) // 2}"
    return ["ffmpeg", "-v", "error", "-threads", "2", "-i", str(path), "-vf", vf, "-pix_fmt", "rgb24",
            "-f", "null", "-"]


def ffmpeg_every_frame(path: Path, size: int) -> None:
    subprocess.run(ffmpeg_every_frame_command(path, size), check=True)


_SIZES: dict[Path, tuple[int, int]] = {}


def _size_of(path: Path) -> tuple[int, int]:
    if path not in _SIZES:
        info = probe(path)
        _SIZES[path] = (info.width, info.height)
    return _SIZES[path]


# --- timing ----------------------------------------------------------------------------------------


def interleaved(contenders: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds per contender, running them in turn each round (shared machines drift)."""
    for run in contenders.values():  # warm-up: file cache, imports, decoder libraries
        run()
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(repeats):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def available(module: str) -> bool:
    try:
        __import__(module)
    except Exception:  # noqa: BLE001 - any failure to import means "not available"
        return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/fvc_loader_bench"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 64, 500])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--only", nargs="+", choices=list(VIDEOS), help="a subset of the files")
    parser.add_argument("--every-frame", action="store_true", help="also (b): every frame against the ffmpeg CLI")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # the reader only stacks arrays; decoding threads are FFmpeg's
    if not shutil.which("ffmpeg"):
        print("the benchmark files are made with the ffmpeg command line; install it (apt-get install ffmpeg)")
        return 2
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, load average "
          f"{os.getloadavg()[0]:.1f}; PyAV {av.__version__} (libavcodec "
          f"{'.'.join(map(str, av.library_versions['libavcodec']))})")
    version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"ffmpeg CLI: {version}")
    has_decord = available("decord")
    if has_decord:
        import decord

        print(f"decord {decord.__version__}")

    paths = {}
    for name in args.only or VIDEOS:
        w, h, x264 = VIDEOS[name]
        start = time.perf_counter()
        paths[name] = make_video(args.workdir / f"{name}.mp4", w, h, x264, vfr="vfr" in name)
        info = probe(paths[name])
        print(f"{name}: {info.width}x{info.height}, {info.frame_count} frames, {info.duration_s:.1f} s, "
              f"keyframe every {info.keyframe_interval or '?'} frames, "
              f"{paths[name].stat().st_size / 1e6:.1f} MB (ready in {time.perf_counter() - start:.1f}s)")

    print(f"\n(a) clips letterboxed to {args.size}: median of {args.repeats} interleaved runs, seconds")
    print("| file | frames | fvc `read_clip` | decord `get_batch` | plain PyAV loop | fvc/decord | fvc/plain |")
    print("|---|---|---|---|---|---|---|")
    ratios: list[float] = []
    for name, path in paths.items():
        for num in args.frames:
            contenders = {
                "fvc": lambda p=path, n=num: fvc_clip(p, n, args.size),
                "plain": lambda p=path, n=num: naive_pyav_clip(p, n, args.size),
            }
            if has_decord:
                contenders["decord"] = lambda p=path, n=num: decord_clip(p, n, args.size)
            t = interleaved(contenders, args.repeats)
            d = t.get("decord")
            if d:
                ratios.append(t["fvc"] / d)
            fvc, plain = t["fvc"], t["plain"]
            peer = f"{d:.3f} | " if d else "- | "
            vs_decord = f"**{fvc / d:.2f}**" if d else "-"
            print(f"| {name} | {num} | {fvc:.3f} | {peer}{plain:.3f} | {vs_decord} | {fvc / plain:.2f} |", flush=True)
    if ratios:
        print(f"\nfvc/decord: geometric mean {statistics.geometric_mean(ratios):.2f}, worst {max(ratios):.2f} "
              f"over {len(ratios)} cases")
    else:
        print("  decord is not installed or does not import: no decord comparison")

    if args.every_frame:
        print(f"\n(b) every frame letterboxed to {args.size}: median of {args.repeats} runs, seconds")
        for name, path in paths.items():
            contenders = {"fvc iter_letterboxed_frames": lambda p=path: fvc_every_frame(p, args.size),
                          "ffmpeg -threads 2": lambda p=path: ffmpeg_every_frame(p, args.size)}
            t = interleaved(contenders, args.repeats)
            line = ", ".join(f"{k} {v:.3f}" for k, v in t.items())
            print(f"  {name}: {line}  ->  fvc/ffmpeg {t['fvc iter_letterboxed_frames'] / t['ffmpeg -threads 2']:.2f}")
            print(f"    {' '.join(ffmpeg_every_frame_command(path, args.size))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
