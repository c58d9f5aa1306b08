"""``fvc prepare`` at scale: N videos on one worker against two, on the local process pool and on Ray.

    .venv/bin/python benchmarks/prepare_scale.py [--videos 8] [--frames 150] [--repeats 3] [--faces]

Makes ``--videos`` H.264 clips of ``--frames`` frames at 640x360 (a camera panning over a textured scene,
crf 23, as benchmarks/prepare_throughput.py; with ``--faces``, scikit-image's astronaut drifting over it,
so that the detector finds a face), then times the real ``fvc prepare TABLE -o OUT --size 256`` as a
subprocess (wall time, a fresh output folder each time), four ways, interleaved so that outside load hits
them alike:

- ``local -j 1`` and ``local -j 2``: the process pool (the default executor);
- ``ray -j 1`` and ``ray -j 2``: ``--executor ray --address`` a Ray instance of 2 CPUs this script starts
  once on 127.0.0.1 (so neither pays Ray's start-up; ``benchmarks/executors.py`` measures that), a task
  per video.

Prints the medians, the ratio two workers / one (goal: <= 0.6) and the machine's load average before and
after; writes benchmarks/out/prepare_scale.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "out"
FVC = [sys.executable, "-m", "fvc_core.cli"]


def make_videos(folder: Path, videos: int, frames: int, faces: bool) -> Path:
    import av
    import numpy as np
    import polars as pl
    from fvc_loaders.synthetic import _smooth_noise

    width, height = 640, 360
    patch = None
    if faces:
        from tests.faces.videos import face_patch

        patch = face_patch()
    names = []
    for v in range(videos):
        rng = np.random.default_rng(v)
        canvas_h, canvas_w = height + frames * 2, width + frames * 2
        canvas = 128 + 60 * _smooth_noise(rng, canvas_h, canvas_w, 12) + 30 * _smooth_noise(rng, canvas_h, canvas_w, 80)
        name = f"{'real' if v % 2 == 0 else 'fake'}/v{v:03d}.mp4"
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        with av.open(str(folder / name), "w") as out:
            stream = out.add_stream("libx264", rate=Fraction(25))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {"crf": "23", "preset": "veryfast"}
            for i in range(frames):
                view = canvas[i * 2 : i * 2 + height, i * 2 : i * 2 + width]
                picture = np.clip(view + rng.normal(0, 6, view.shape), 0, 255).astype(np.uint8)
                picture = np.repeat(picture[:, :, None], 3, axis=2) if picture.ndim == 2 else picture
                if patch is not None:
                    x = 200 + int(100 * i / frames)
                    picture[60 : 60 + patch.shape[0], x : x + patch.shape[1]] = patch
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture), format="rgb24")
                frame.pts = i
                out.mux(stream.encode(frame))
            out.mux(stream.encode(None))
        names.append(name)
    table = folder / "metadata.parquet"
    pl.DataFrame({"video_path": names, "label": [n.split("/")[0] for n in names],
                  "source_id": [f"s{i}" for i in range(videos)]}).write_parquet(table)
    return table


def start_ray(cpus: int):
    """A Ray instance of ``cpus`` CPUs on 127.0.0.1 (as tests/conftest.py starts one); its cluster object."""
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    ray_constants.ENABLE_RAY_CLUSTER = False
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    return Cluster(initialize_head=True, head_node_args={"num_cpus": cpus, "node_ip_address": "127.0.0.1",
                                                          "include_dashboard": False})


def timed(command: list[str], env: dict[str, str], out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run([*command, "-o", str(out)], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=8)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--faces", action="store_true", help="fvc prepare --faces (the Haar detector)")
    args = parser.parse_args()

    load_before = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="fvc-bench-prepare-scale-"))
    cluster = None
    try:
        table = make_videos(work / "data", args.videos, args.frames, args.faces)
        cluster = start_ray(2)
        env = {**os.environ, "CI": "1", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
        base = [*FVC, "prepare", str(table), "--size", "256", *(["--faces"] if args.faces else [])]
        ways = {
            "local -j 1": [*base, "-j", "1"],
            "local -j 2": [*base, "-j", "2"],
            "ray -j 1": [*base, "-j", "1", "--executor", "ray", "--address", cluster.address],
            "ray -j 2": [*base, "-j", "2", "--executor", "ray", "--address", cluster.address],
        }
        times: dict[str, list[float]] = {way: [] for way in ways}
        for _ in range(args.repeats):
            for way, command in ways.items():
                times[way].append(timed(command, env, work / "out"))
        load_after = os.getloadavg()
    finally:
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    medians = {way: statistics.median(t) for way, t in times.items()}
    ratios = {"local": medians["local -j 2"] / medians["local -j 1"], "ray": medians["ray -j 2"] / medians["ray -j 1"]}
    what = f"{args.videos} videos of {args.frames} frames at 640x360 -> 256, {'--faces' if args.faces else 'copies'}"
    print(f"{what}; {os.cpu_count()} CPUs; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after")
    print(f"{'way':<12} {'median s':>9}  runs")
    for way, seconds in medians.items():
        print(f"{way:<12} {seconds:9.2f}  {', '.join(f'{t:.2f}' for t in times[way])}")
    for name, ratio in ratios.items():
        print(f"{name}: two workers / one = {ratio:.2f} (goal <= 0.6)")
    OUT.mkdir(parents=True, exist_ok=True)
    record = {"what": what, "cpus": os.cpu_count(), "load_before": load_before, "load_after": load_after,
              "times": times, "medians": medians, "ratios": ratios, "repeats": args.repeats}
    name = "prepare_scale_faces.json" if args.faces else "prepare_scale.json"
    (OUT / name).write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
