"""Decode speed of the fvc PyAV reader, side by side with decord and the ffmpeg command line.

    .venv/bin/python benchmarks/loader_decode.py            # writes its videos under /tmp/fvc_loader_bench

Makes two H.264 files with PyAV (720p with a 250-frame GOP and B-frames, and
1080p), then times, in one run and interleaved (medians of --repeats):

(a) a 16-frame clip letterboxed to 256: ``read_clip`` against decord
    (``VideoReader(width=, height=, num_threads=2)`` + ``get_batch``, padded the
    same way) and, for context, a naive PyAV loop that decodes every frame up to
    the last one wanted and converts only the kept ones;
(b) every frame letterboxed to 256: ``iter_letterboxed_frames`` against
    ``ffmpeg -threads 2 -i F -vf scale=W:H,pad=256:256:X:Y -pix_fmt rgb24 -f null -``.

decord and ffmpeg are benchmark peers only, never dependencies of fvc; a peer
that is missing is reported as such. Ratios are fvc time / peer time (below 1:
fvc is faster).
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

VIDEOS = {
    # name: (width, height, frames, fps, x264 params)
    "720p_gop250_bframes": (1280, 720, 300, 30, "keyint=250:min-keyint=250:scenecut=0:bframes=3"),
    "1080p": (1920, 1080, 240, 30, "bframes=3"),
}


def synthetic_frames(width: int, height: int, count: int, seed: int = 0):
    """A smooth random texture panning across the frame, a moving square and a little grain.

    Flat or static frames decode unrealistically fast; this keeps the encoder busy
    with motion and detail like camera footage does, at a bit rate of a few Mbit/s.
    """
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8 + 8, width // 8 + 8, 3), dtype=np.uint8)
    texture = np.repeat(np.repeat(coarse, 8, axis=0), 8, axis=1)
    for i in range(count):
        dx, dy = (3 * i) % 64, (2 * i) % 64
        frame = texture[dy : dy + height, dx : dx + width].copy()
        s = height // 6
        x, y = (11 * i) % (width - s), (7 * i) % (height - s)
        frame[y : y + s, x : x + s] = 255 - frame[y : y + s, x : x + s]
        frame += rng.integers(0, 4, frame.shape, dtype=np.uint8)
        yield frame


def make_video(path: Path, width: int, height: int, frames: int, fps: int, x264_params: str) -> Path:
    if path.exists():
        return path
    tmp = path.with_suffix(".tmp.mp4")
    with av.open(str(tmp), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "x264-params": x264_params}
        for i, picture in enumerate(synthetic_frames(width, height, frames)):
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
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
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)  # the reader only stacks arrays; decoding threads are FFmpeg's
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores; "
          f"PyAV {av.__version__} (FFmpeg {'.'.join(map(str, av.library_versions['libavcodec']))} libavcodec)")
    if shutil.which("ffmpeg"):
        version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
        print(f"ffmpeg CLI: {version}")
    has_decord = available("decord")
    if has_decord:
        import decord

        print(f"decord {decord.__version__}")

    paths = {}
    for name, (w, h, n, fps, params) in VIDEOS.items():
        start = time.perf_counter()
        paths[name] = make_video(args.workdir / f"{name}.mp4", w, h, n, fps, params)
        info = probe(paths[name])
        print(f"{name}: {info.width}x{info.height}, {info.frame_count} frames at {info.fps:g} fps, "
              f"keyframe every {info.keyframe_interval or '?'} frames, "
              f"{paths[name].stat().st_size / 1e6:.1f} MB (ready in {time.perf_counter() - start:.1f}s)")

    print(f"\n(a) {args.frames} frames letterboxed to {args.size}: median of {args.repeats} runs, seconds")
    for name, path in paths.items():
        contenders = {
            "fvc read_clip": lambda p=path: fvc_clip(p, args.frames, args.size),
            "naive PyAV loop": lambda p=path: naive_pyav_clip(p, args.frames, args.size),
        }
        if has_decord:
            contenders["decord get_batch"] = lambda p=path: decord_clip(p, args.frames, args.size)
        t = interleaved(contenders, args.repeats)
        line = ", ".join(f"{k} {v:.3f}" for k, v in t.items())
        ours = t["fvc read_clip"]
        ratios = ", ".join(f"fvc/{k.split()[0]} {ours / v:.2f}" for k, v in t.items() if k != "fvc read_clip")
        print(f"  {name}: {line}  ->  {ratios}")
    if not has_decord:
        print("  decord is not installed or does not import: no decord comparison")

    print(f"\n(b) every frame letterboxed to {args.size}: median of {args.repeats} runs, seconds")
    for name, path in paths.items():
        contenders = {"fvc iter_letterboxed_frames": lambda p=path: fvc_every_frame(p, args.size)}
        if shutil.which("ffmpeg"):
            contenders["ffmpeg -threads 2"] = lambda p=path: ffmpeg_every_frame(p, args.size)
        t = interleaved(contenders, args.repeats)
        line = ", ".join(f"{k} {v:.3f}" for k, v in t.items())
        ratio = (f"fvc/ffmpeg {t['fvc iter_letterboxed_frames'] / t['ffmpeg -threads 2']:.2f}"
                 if "ffmpeg -threads 2" in t else "no ffmpeg CLI on PATH")
        print(f"  {name}: {line}  ->  {ratio}")
        if "ffmpeg -threads 2" in t:
            print(f"    {' '.join(ffmpeg_every_frame_command(path, args.size))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
