"""The seed's workload on a real GPU, in one command: a table on screen and a JSON file.

    python3 benchmarks/gpu_check.py [--out gpu_check.json] [--budget 480]
    python3 benchmarks/gpu_check.py --dry        # every code path at tiny sizes, on a CPU (CI runs this)

Sections (each ends ``measured``, ``skipped`` with the reason, or ``failed`` with the error; one
section failing never stops the others):

- ``env``: python, torch, CUDA, the GPU, the CPUs, the versions of the packages the check imports.
- ``step``: the seed's training step (naive_cnn, 500 x 256 x 256, batch 1) through the trainer's own
  training pass (``FoldTraining.train_epoch``: autocast, GradScaler, clipping, AdamW) in fp32, AMP
  fp16 and bf16, clips already on the device: seconds a step, peak GPU memory, every loss finite,
  the fp16/bf16 losses step by step against fp32's (same initial weights, same clips).
- ``data``: what one data worker delivers (clips/s of the metadata dataset at the seed's sizes,
  augmentation on, decoding with PyAV in this process) against what a step needs: the workers a
  GPU of the measured step speed needs.
- ``train_naive_cnn``: a real ``fvc run`` (in this process) of one fold (split: official), two
  epochs, on copies written by the real ``fvc prepare``, with the data workers the machine allows:
  the time each step waited for data and the share of the training loop the GPU was busy (NVML
  utilisation sampled every 50 ms inside each epoch's training pass). Goal: busy >= 90 %.
- ``train_timm``: the same on face crops (``fvc prepare --faces``) with fvc-timm's model
  (``--timm-arch``, efficientnet_b4 by default, random weights); skipped without fvc-timm.
- ``train_r2plus1d``: the same for r2plus1d on windows of consecutive frames.
- ``decode``: frames/s of torchcodec's CUDA decoder against PyAV on the CPU (and torchcodec on the
  CPU) over the same prepared clips.
- ``ray``: ``fvc run`` on the ray executor with ``num_gpus=1``, two folds: each on its own GPU when
  there are two, one after the other when there is one (GPUs seen in use per process, via NVML).

The device procedure (wheels, PYTHONPATH) is in docs/gpu.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("env", "step", "data", "train_naive_cnn", "train_timm", "train_r2plus1d", "decode", "ray")
TIMM_NAMES = ("timm", "efficientnet_b4")
GOAL_BUSY = 0.90
MADE = 3  # real videos encoded (as many fakes); the rest are copies of them under other names


class Skip(Exception):
    """A section that cannot run here: its message is the reason."""


@dataclass
class Sizes:
    """What the check runs at: the seed's sizes on a GPU, tiny ones with --dry."""

    frames: int  # frames encoded per synthetic video
    num_frames: int  # frames sampled per clip (sampler: uniform)
    size: int
    chunk_size: int
    step_clips: int  # distinct clips fed to the step timing
    step_epochs: int  # passes over them; the first is warm-up
    videos: int  # real videos (as many fakes) for the training sections
    epochs: int
    clip_len: int  # r2plus1d window sampler
    window: int
    blocks: int
    data_clips: int
    decode_clips: int


GPU_SIZES = Sizes(frames=500, num_frames=500, size=256, chunk_size=10, step_clips=4, step_epochs=3, videos=20,
                  epochs=2, clip_len=32, window=8, blocks=2, data_clips=4, decode_clips=4)
DRY_SIZES = Sizes(frames=8, num_frames=4, size=64, chunk_size=2, step_clips=2, step_epochs=2, videos=4,
                  epochs=2, clip_len=4, window=4, blocks=1, data_clips=2, decode_clips=2)


# -- small helpers --------------------------------------------------------------------------------
def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def workers_allowed(dry: bool) -> int:
    """Data workers for the training sections: the CPUs this process may use, less one for the
    training loop and one for the rest, at most 12 (DataLoader's returns fall off beyond)."""
    if dry:
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cpus - 2, 12))


def version_of(name: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


class Nvml:
    """NVML through nvidia-ml-py: utilisation and compute processes per GPU, sampled in a thread."""

    def __init__(self) -> None:
        try:
            import pynvml
        except ImportError as exc:
            raise Skip(f"nvidia-ml-py is not installed ({exc})") from None
        try:
            pynvml.nvmlInit()
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded: no NVIDIA GPU here
            raise Skip(f"NVML cannot start: {exc}") from None
        self.nv = pynvml
        self.handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
        self.samples: list[tuple[float, int, list[int]]] = []  # (time, gpu, utilisation %, pids)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        while not self._stop.is_set():
            now = time.perf_counter()
            for index, handle in enumerate(self.handles):
                util = self.nv.nvmlDeviceGetUtilizationRates(handle).gpu
                try:
                    pids = [p.pid for p in self.nv.nvmlDeviceGetComputeRunningProcesses(handle)]
                except self.nv.NVMLError:
                    pids = []
                self.samples.append((now, index, util, pids))
            self._stop.wait(0.05)

    def __enter__(self) -> Nvml:
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def busy_share(self, windows: list[tuple[float, float]], gpu: int = 0, settle: float = 0.5) -> float | None:
        """Mean utilisation of ``gpu`` over samples inside the windows, each window's first ``settle``
        seconds left out (NVML's figure covers the past sample period, up to a second)."""
        values = [util for t, index, util, _ in self.samples if index == gpu
                  and any(start + settle <= t <= end for start, end in windows)]
        return statistics.fmean(values) / 100 if values else None

    def gpus_used_by(self) -> dict[int, list[int]]:
        """GPU index -> the process ids seen computing on it."""
        used: dict[int, set[int]] = {}
        for _, index, _, pids in self.samples:
            used.setdefault(index, set()).update(pids)
        return {index: sorted(pids) for index, pids in used.items() if pids}


@contextlib.contextmanager
def epoch_windows():
    """Records (start, end, stats) of every ``FoldTraining.train_epoch`` call in this process:
    the training pass's own boundaries, for the NVML samples (instrumentation, nothing changed)."""
    from fvc_core.training import loop

    original = loop.FoldTraining.train_epoch
    records: list[tuple[float, float, dict[str, float]]] = []

    def timed(self, epoch: int) -> dict[str, float]:
        start = time.perf_counter()
        stats = original(self, epoch)
        records.append((start, time.perf_counter(), dict(stats)))
        return stats

    loop.FoldTraining.train_epoch = timed
    try:
        yield records
    finally:
        loop.FoldTraining.train_epoch = original


def run_fvc(args: list[str], log: Path) -> None:
    """``fvc ARGS`` in this process (so its epochs can be timed), its output into ``log``."""
    from fvc_core.cli import main

    with log.open("a") as out, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = main(args)
    if code:
        tail = log.read_text().strip().splitlines()[-3:]
        raise RuntimeError(f"fvc {' '.join(args[:2])} exited {code}: {' | '.join(tail)}")


def fvc_command(args: list[str], log: Path) -> None:
    """``fvc ARGS`` as the user types it (a subprocess of this Python), its output into ``log``."""
    with log.open("a") as out:
        code = subprocess.call([sys.executable, "-m", "fvc_core.cli", *args], stdout=out, stderr=subprocess.STDOUT)
    if code:
        tail = log.read_text().strip().splitlines()[-3:]
        raise RuntimeError(f"fvc {args[0]} exited {code}: {' | '.join(tail)}")


def write_yaml(path: Path, config: dict[str, Any]) -> Path:
    import yaml

    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def torchcodec_loads() -> bool:
    try:
        import torchcodec.decoders  # noqa: F401  (dlopens FFmpeg's libraries)
    except Exception:
        return False
    return True


def pyav_ffmpeg_links(folder: Path) -> Path | None:
    """A folder where PyAV's own FFmpeg (its wheel's av.libs) answers to the names torchcodec asks the
    loader for (libavcodec.so.62, ...): no FFmpeg is installed on the device machine, and PyAV's wheel
    brings one. Every file of av.libs is linked too, for the hashed names those libraries need."""
    try:
        import av
    except ImportError:
        return None
    libs = Path(av.__file__).resolve().parent.parent / "av.libs"
    if not libs.is_dir():
        return None
    folder.mkdir(parents=True, exist_ok=True)
    for lib in libs.iterdir():
        (folder / lib.name).symlink_to(lib)
        head, _, tail = lib.name.partition(".so.")
        family = head.rsplit("-", 1)[0]
        if family in ("libavcodec", "libavformat", "libavutil", "libavfilter", "libavdevice", "libswscale",
                      "libswresample"):
            (folder / f"{family}.so.{tail.split('.')[0]}").symlink_to(lib)
    return folder


def with_ffmpeg_for_torchcodec(argv: list[str]) -> None:
    """Run again with PyAV's FFmpeg on the library path when torchcodec finds none (the loader reads
    LD_LIBRARY_PATH only when a process starts); once, and only when that helps."""
    if os.environ.get("FVC_GPU_CHECK_FFMPEG") or version_of("torchcodec") is None or torchcodec_loads():
        return
    import tempfile

    links = pyav_ffmpeg_links(Path(tempfile.mkdtemp(prefix="fvc_gpu_check_ffmpeg_")))
    if links is None:
        return
    env = {**os.environ, "FVC_GPU_CHECK_FFMPEG": str(links),
           "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [str(links), os.environ.get("LD_LIBRARY_PATH")]))}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, str(Path(__file__).resolve()), *argv], env)


# -- the check ------------------------------------------------------------------------------------
class Check:
    def __init__(self, dry: bool, work: Path, budget: float):
        self.dry = dry
        self.sizes = DRY_SIZES if dry else GPU_SIZES
        self.work = work
        self.deadline = time.perf_counter() + budget
        self.results: dict[str, dict[str, Any]] = {}
        self.cuda = cuda_available()
        self.device = "cuda" if self.cuda else "cpu"
        self.workers = workers_allowed(dry)
        self._videos: dict[str, Path] = {}
        self.nvml_missing = ""
        self.timm_model: str | None = None  # --timm-model: another 2D model on the face crops path
        self.timm_arch = "efficientnet_b4"  # --timm-arch: the timm architecture fvc-timm's model trains

    # Sections --------------------------------------------------------------------------------
    def env(self) -> dict[str, Any]:
        import torch

        out: dict[str, Any] = {
            "python": platform.python_version(), "executable": sys.executable, "torch": torch.__version__,
            "cuda": torch.version.cuda, "cuda_available": self.cuda, "cpus": os.cpu_count(),
            "data_workers": self.workers, "dry": self.dry,
            "ffmpeg_for_torchcodec": (f"PyAV's own (linked in {os.environ['FVC_GPU_CHECK_FFMPEG']})"
                                      if os.environ.get("FVC_GPU_CHECK_FFMPEG") else "the system's"),
            "packages": {n: version_of(n) for n in ("av", "polars", "pydantic", "omegaconf", "torchcodec", "ray",
                                                    "timm", "nvidia-ml-py", "fvc-core", "fvc-loaders")},
        }
        if self.cuda:
            props = torch.cuda.get_device_properties(0)
            out |= {"gpu": props.name, "gpu_count": torch.cuda.device_count(),
                    "gpu_memory_gib": round(props.total_memory / 2**30, 1)}
        return out

    def step(self) -> dict[str, Any]:
        import torch

        s = self.sizes
        gen = torch.Generator().manual_seed(0)
        clips = [torch.randint(0, 256, (1, s.num_frames, 3, s.size, s.size), dtype=torch.uint8, generator=gen)
                 .to(self.device) for _ in range(s.step_clips)]
        labels = [i % 2 for i in range(s.step_clips)]
        precisions: dict[str, Any] = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
        out: dict[str, Any] = {"model": "naive_cnn", "clip": [1, s.num_frames, 3, s.size, s.size],
                               "chunk_size": s.chunk_size, "device": self.device, "precisions": {}}
        for name, dtype in precisions.items():
            if name == "fp16" and not self.cuda:
                out["precisions"][name] = {"status": "skipped",
                                           "reason": "fp16 autocast needs CUDA (fvc refuses trainer.amp=fp16 on CPU)"}
                continue
            out["precisions"][name] = self._step_precision(dtype, clips, labels)
        fp32 = out["precisions"]["fp32"].get("losses")
        for name in ("fp16", "bf16"):
            entry = out["precisions"][name]
            if fp32 and entry.get("losses"):
                diffs = [abs(a - b) for a, b in zip(entry["losses"], fp32, strict=True)]
                # The first step's loss comes from the same weights: its difference is the precision's
                # alone. Later ones add the updates' drift (and fp16 steps the GradScaler skipped).
                entry["first_loss_diff_vs_fp32"] = diffs[0]
                entry["max_loss_diff_vs_fp32"] = max(diffs)
                entry["close_to_fp32"] = diffs[0] <= (0.01 if name == "fp16" else 0.02) and max(diffs) <= 0.1
        out["all_finite"] = all(p.get("finite", True) for p in out["precisions"].values())
        return out

    def _step_precision(self, dtype, clips, labels) -> dict[str, Any]:
        import torch

        from fvc_core import create_model
        from fvc_core.tracking import RunInfo, Tracker
        from fvc_core.training.config import SupervisedConfig
        from fvc_core.training.data import Batch
        from fvc_core.training.loop import Environment, FoldTraining, SkippedVideos

        s = self.sizes
        device = torch.device(self.device)

        class Loader:  # the clips, already on the device, in the order the loop asks for them
            def __init__(self, sampler):
                self.sampler = sampler

            def __iter__(self):
                for key in self.sampler.keys:
                    yield Batch([key.row], torch.tensor([labels[key.row]]), clips[key.row])

        class Keys:
            keys: list = []

        class Losses:  # the progress the loop reports to: every step's loss
            def __init__(self):
                self.values: list[float] = []

            def start_pass(self, *a):
                pass

            def step(self, loss=None):
                if loss is not None:
                    self.values.append(loss)

        class Job:
            build_model = staticmethod(lambda: create_model("naive_cnn", {"chunk_size": s.chunk_size}))
            trackers = Tracker()
            interactive = False
            run = RunInfo("gpu_check", "g", {}, "h", "naive_cnn", self.work / "step", 1)

        progress = Losses()
        sampler = Keys()
        env = Environment(device, dtype, Loader(sampler), sampler, [f"clip{i}" for i in range(len(clips))],
                          {}, SkippedVideos(self.work / "step_skipped.json", "fail"), 0, progress)
        cfg = SupervisedConfig(folds=2, epochs=s.step_epochs, grad_accum=1, warmup_epochs=0)
        fold = FoldTraining(Job(), cfg, env, 0, {"train": list(enumerate(labels)), "val": [], "test": []},
                            self.work / "step")
        fold._build()
        seconds = []
        for epoch in range(1, s.step_epochs + 1):
            if self.cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            stats = fold.train_epoch(epoch)
            if self.cuda:
                torch.cuda.synchronize()
            seconds.append(stats["epoch_seconds"] / len(clips))
        out: dict[str, Any] = {
            "status": "measured", "step_seconds": min(seconds[1:]) if len(seconds) > 1 else seconds[0],
            "step_seconds_per_epoch": seconds, "losses": progress.values,
            "finite": all(math.isfinite(v) for v in progress.values),
            "grad_scaler": fold.scaler.is_enabled(),
        }
        if fold.scaler.is_enabled():
            # The scale starts at 2**16 and halves at each step skipped for inf/NaN gradients (it
            # grows back only after 2000 clean steps): the steps the GradScaler skipped here.
            out["grad_scaler_skipped_steps"] = round(math.log2(65536.0 / fold.scaler.get_scale()))
        if self.cuda:
            out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        del fold
        if self.cuda:
            torch.cuda.empty_cache()
        return out

    def data(self) -> dict[str, Any]:
        import polars as pl

        from fvc_core.plugins import get_registry
        from fvc_core.training.data import ClipSource, Key

        s = self.sizes
        table = self.prepared("plain")
        rows = pl.read_parquet(table).sort("video_path")
        paths, labels = [str(table.parent / p) for p in rows["video_path"].to_list()], rows["label"].to_list()
        n = min(s.data_clips, len(paths))
        seconds = {}
        for augment in (False, True):
            dataset = get_registry().create("datasets", "metadata", {
                "metadata": str(table), "num_frames": s.num_frames, "size": s.size, "augment": augment})
            source = ClipSource(dataset, paths, labels)
            source[Key(0, augment, 0)]  # warm-up: imports, codec set-up
            t0 = time.perf_counter()
            for row in range(n):
                item = source[Key(row, augment, row + 1)]
                if item.video is None:
                    raise RuntimeError(f"{paths[row]}: {item.error}")
            seconds[augment] = (time.perf_counter() - t0) / n
        per_clip = seconds[True]  # training clips are augmented
        out = {"clip": [s.num_frames, s.size, s.size], "decoder": "pyav", "threads": "one process",
               "seconds_per_clip_one_worker": per_clip, "clips_per_second_one_worker": 1 / per_clip,
               "seconds_per_clip_without_augment": seconds[False]}
        step = self.results.get("step", {}).get("precisions", {})
        need = {}
        for name, entry in step.items():
            if entry.get("status") == "measured":
                need[name] = {"step_seconds": entry["step_seconds"],
                              "workers_needed": math.ceil(per_clip / entry["step_seconds"])}
        out["workers_needed_for_measured_steps"] = need
        out["workers_needed_at_step_seconds"] = {str(t): math.ceil(per_clip / t) for t in (0.05, 0.1, 0.2, 0.5, 1.0)}
        return out

    def train_naive_cnn(self) -> dict[str, Any]:
        s = self.sizes
        return self._train("naive_cnn", self.prepared("plain"), {"name": "naive_cnn", "chunk_size": s.chunk_size},
                           {"num_frames": s.num_frames})

    def train_timm(self) -> dict[str, Any]:
        from fvc_core.plugins import get_registry

        models = get_registry().names("models")
        if self.timm_model:
            name, model = self.timm_model, {"name": self.timm_model}
        elif "timm" in models:
            # fvc-timm's generic model at the check's frame size (a CNN takes any size; the preset
            # efficientnet_b4 would ask for its published 380 px), random weights: nothing to fetch.
            name = "timm"
            model = {"name": "timm", "arch": self.timm_arch, "chunk_size": self.sizes.chunk_size}
        else:
            raise Skip("no timm model plugin installed (no model named " + " or ".join(TIMM_NAMES) + ")")
        return self._train(name, self.prepared("faces"), model, {"num_frames": self.sizes.num_frames})

    def train_r2plus1d(self) -> dict[str, Any]:
        s = self.sizes
        return self._train("r2plus1d", self.prepared("plain"),
                           {"name": "r2plus1d", "window": s.window, "blocks": s.blocks},
                           {"sampler": "window", "clip_len": s.clip_len, "clips_per_video": 2})

    def decode(self) -> dict[str, Any]:
        import av
        import numpy as np
        import polars as pl

        table = self.prepared("plain")
        paths = [str(table.parent / p) for p in pl.read_parquet(table).sort("video_path")["video_path"].to_list()]
        paths = paths[: self.sizes.decode_clips]
        out: dict[str, Any] = {"clips": len(paths)}

        def pyav(path: str) -> int:
            with av.open(path) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                return sum(1 for frame in container.decode(stream) if frame.to_ndarray(format="rgb24") is not None)

        out["pyav_cpu"] = self._frames_per_second(pyav, paths)
        try:
            import torchcodec.decoders  # noqa: F401  (loads FFmpeg's libraries)
        except Exception as exc:
            # Its message runs to a page (one paragraph per FFmpeg version tried): the first library
            # the loader could not open says why (FFmpeg's, or CUDA's libnvrtc for its CUDA build).
            causes = [line for line in str(exc).splitlines()
                      if line.startswith("OSError:") and "Could not load this library" not in line]
            reason = (f"torchcodec {version_of('torchcodec') or ''} cannot load: "
                      + (causes[0] if causes else str(exc).splitlines()[0])[:200]
                      + " (it needs FFmpeg 4-8's shared libraries, and its CUDA build CUDA 13's)")
            out["torchcodec_cpu"] = out["torchcodec_cuda"] = {"status": "skipped", "reason": reason}
            return out

        def codec(device: str) -> Callable[[str], int]:
            import torch
            from torchcodec.decoders import VideoDecoder

            def read(path: str) -> int:
                decoder = VideoDecoder(path, device=device, seek_mode="approximate")
                frames = decoder.get_frames_in_range(0, len(decoder)).data
                if device == "cuda":
                    torch.cuda.synchronize()
                    # torchcodec falls back to decoding on the CPU, silently, when NVDEC cannot take
                    # the video (or libnvcuvid is missing): such figures are not the GPU's.
                    fallback = getattr(decoder, "cpu_fallback", None)
                    if fallback is not None:
                        fell_back.append(str(fallback) if bool(fallback) else "")
                    if frames.device.type != "cuda":
                        fell_back.append(f"frames came back on {frames.device}")
                return int(np.shape(frames)[0])

            return read

        fell_back: list[str] = []
        out["torchcodec_cpu"] = self._frames_per_second(codec("cpu"), paths)
        if not self.cuda:
            out["torchcodec_cuda"] = {"status": "skipped", "reason": "no CUDA device"}
        else:
            try:
                out["torchcodec_cuda"] = self._frames_per_second(codec("cuda"), paths)
                reasons = sorted({r for r in fell_back if r})
                out["torchcodec_cuda"]["cpu_fallback"] = bool(reasons)
                if reasons:
                    out["torchcodec_cuda"]["cpu_fallback_reason"] = "; ".join(reasons)[:300]
            except Exception as exc:  # a torchcodec built without CUDA, an FFmpeg without NVDEC
                out["torchcodec_cuda"] = {"status": "skipped", "reason": f"{type(exc).__name__}: "
                                          f"{str(exc).splitlines()[0][:200] if str(exc) else ''}"}
        cuda, cpu = out["torchcodec_cuda"], out["pyav_cpu"]
        if cuda.get("status") == "measured" and not cuda.get("cpu_fallback"):
            out["cuda_vs_pyav"] = cuda["frames_per_second"] / cpu["frames_per_second"]
        return out

    def ray(self) -> dict[str, Any]:
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            raise Skip(f"ray is not installed ({exc}); its wheel does not fit one device call (docs/gpu.md)") from None
        from fvc_core.plugins import get_registry

        if "ray" not in get_registry().names("executors"):
            raise Skip("the ray executor plugin (fvc-ray) is not installed")
        s = self.sizes
        gpus = self._gpu_count()
        num_gpus = 1 if gpus else 0
        run_dir = self.work / "run_ray"
        config = self._config("ray", self.prepared("plain"), {"name": "naive_cnn", "chunk_size": s.chunk_size},
                              {"num_frames": s.num_frames}, run_dir, folds=2, epochs=1, workers=min(self.workers, 2))
        config["executor"] = {"name": "ray", "num_gpus": num_gpus, "num_cpus": 1}
        cfg = write_yaml(self.work / "ray.yaml", config)
        nvml = self._nvml()
        t0 = time.perf_counter()
        with nvml or contextlib.nullcontext():
            run_fvc(["run", str(cfg)], self.work / "ray.log")
        wall = time.perf_counter() - t0
        folds = sorted(p.parent.name for p in run_dir.glob("*/fold_*/metrics.json"))
        out: dict[str, Any] = {"num_gpus": num_gpus, "gpus": gpus, "folds_done": folds, "wall_seconds": wall,
                               "expected": "each fold on its own GPU" if gpus >= 2 else
                               "one fold after the other on the one GPU" if gpus == 1 else
                               "num_gpus=0: no GPU here (dry run on CPU)"}
        if nvml is not None:
            used = nvml.gpus_used_by()
            mine = os.getpid()
            out["gpu_processes"] = {str(k): [p for p in v if p != mine] for k, v in used.items()}
            out["gpus_used"] = sorted(k for k, v in out["gpu_processes"].items() if v)
        if len(folds) != 2:
            raise RuntimeError(f"ray run finished {len(folds)} fold(s) of 2: see {self.work / 'ray.log'}")
        return out

    # Shared pieces -----------------------------------------------------------------------------
    def _gpu_count(self) -> int:
        import torch

        return torch.cuda.device_count() if self.cuda else 0

    def _nvml(self) -> Nvml | None:
        if not self.cuda:
            return None
        try:
            return Nvml()
        except Skip as exc:
            self.nvml_missing = str(exc)
            return None

    def synthetic(self) -> Path:
        """Real and fake H.264 videos (the loaders plugin's generator) and their table."""
        if "synthetic" not in self._videos:
            from fvc_loaders.synthetic import make_synthetic_dataset

            s = self.sizes
            # Encoding 500-frame videos takes seconds each in one process: a few are made, and
            # prepared() copies them under other names (decoding costs the same).
            self._videos["synthetic"] = make_synthetic_dataset(self.work / "videos", videos=min(s.videos, MADE),
                                                               frames=s.frames, frame_size=s.size, seed=0)
        return self._videos["synthetic"]

    def prepared(self, kind: str) -> Path:
        """The table of copies the real ``fvc prepare`` wrote (``faces``: face crops), with an official
        split column (train/val/test by source), so that one fold is a real run of its own."""
        if kind in self._videos:
            return self._videos[kind]
        import polars as pl

        source = self.synthetic()
        out = self.work / f"prepared_{kind}"
        args = ["prepare", str(source), "-o", str(out), "--size", str(self.sizes.size), "-j", str(self.workers)]
        if kind == "faces":
            args += ["--faces", "--face-no-face", "full_frame"]
        fvc_command(args, self.work / f"prepare_{kind}.log")
        table_path = out / "scaled_metadata.parquet"
        if not table_path.exists():
            found = sorted(out.glob("*.parquet"))
            if not found:
                raise RuntimeError(f"fvc prepare wrote no table under {out}")
            table_path = found[0]
        table = self._replicated(pl.read_parquet(table_path), table_path.parent)
        group = "source_id" if "source_id" in table.columns else "video_path"
        sources = sorted(table[group].unique().to_list())
        n = len(sources)
        part = {src: ("test" if i % 5 == 4 else "val" if i % 5 == 3 else "train") for i, src in enumerate(sources)}
        if n < 5:  # a tiny dry run: one source each for val and test, the rest trains
            part = {src: ("test" if i == n - 1 else "val" if i == n - 2 else "train") for i, src in enumerate(sources)}
        table = table.with_columns(pl.col(group).replace_strict(part, return_dtype=pl.String).alias("split"))
        # Beside the copies: the table's video paths are relative to its own folder.
        path = table_path.with_name("official_split.parquet")
        table.write_parquet(path)
        self._videos[kind] = path
        return path

    def _replicated(self, table, folder: Path):
        """The prepared table grown to ``sizes.videos`` sources: hard links of the copies (a file copy
        where links fail) under new names, each replica a source of its own."""
        import polars as pl

        made = table["source_id"].n_unique() if "source_id" in table.columns else table.height
        replicas = math.ceil(self.sizes.videos / max(made, 1))
        parts = [table]
        for k in range(1, replicas):
            paths = []
            for rel in table["video_path"].to_list():
                src, dst = folder / rel, folder / Path(rel).with_name(f"r{k}_{Path(rel).name}")
                if not dst.exists():
                    try:
                        os.link(src, dst)
                    except OSError:
                        shutil.copyfile(src, dst)
                paths.append(str(Path(rel).with_name(dst.name)))
            copy = table.with_columns(pl.Series("video_path", paths))
            if "source_id" in table.columns:
                copy = copy.with_columns((pl.col("source_id") + f"_r{k}").alias("source_id"))
            parts.append(copy)
        return pl.concat(parts)

    def _config(self, name: str, table: Path, model: dict[str, Any], data: dict[str, Any], run_dir: Path,
                folds: int, epochs: int, workers: int) -> dict[str, Any]:
        group = "source_id" if "source_id" in __import__("polars").read_parquet(table).columns else None
        return {
            "experiment": f"gpu_check_{name}", "seed": 0, "output_dir": str(run_dir),
            "data": {"name": "metadata", "metadata": str(table), "size": self.sizes.size, "group_column": group,
                     **data},
            "model": model,
            "trainer": {"name": "supervised", "split": "official" if folds == 1 else "kfold", "folds": folds,
                        "epochs": epochs, "batch_size": 1, "grad_accum": 4, "warmup_epochs": 0,
                        "amp": "auto", "num_workers": workers, "early_stopping": {"patience": None}},
            "trackers": ["console"],
        }

    def _train(self, name: str, table: Path, model: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
        s = self.sizes
        run_dir = self.work / f"run_{name}"
        config = self._config(name, table, model, data, run_dir, folds=1, epochs=s.epochs, workers=self.workers)
        cfg = write_yaml(self.work / f"{name}.yaml", config)
        nvml = self._nvml()
        with epoch_windows() as epochs, (nvml or contextlib.nullcontext()):
            run_fvc(["run", str(cfg), "--fresh"], self.work / f"{name}.log")
        if len(epochs) != s.epochs:
            raise RuntimeError(f"{len(epochs)} training epoch(s) timed, {s.epochs} expected")
        rows = []
        for start, end, stats in epochs:
            row = {"epoch_seconds": stats["epoch_seconds"], "data_wait_seconds": stats["data_wait_seconds"],
                   "data_wait_share": stats["data_wait_seconds"] / stats["epoch_seconds"],
                   "train_loss": stats["train_loss"]}
            if nvml is not None:
                row["gpu_busy"] = nvml.busy_share([(start, end)])
            rows.append(row)
        later = rows[1:] or rows  # the first epoch pays for the workers' start and cuDNN's autotuning
        out: dict[str, Any] = {
            "model": model, "data": data, "data_workers": self.workers, "device": self.device,
            "amp": "fp16" if self.cuda else "off", "epochs": rows,
            "data_wait_share": statistics.fmean(r["data_wait_share"] for r in later),
        }
        train_videos = sum(1 for p in __import__("polars").read_parquet(table)["split"].to_list() if p == "train")
        out["train_videos"] = train_videos
        out["seconds_per_clip"] = statistics.fmean(r["epoch_seconds"] for r in later) / max(train_videos, 1)
        if nvml is None:
            out["gpu_busy"] = None
            out["gpu_busy_reason"] = "no CUDA device: NVML not sampled" if not self.cuda else self.nvml_missing
        else:
            busy = [r["gpu_busy"] for r in later if r["gpu_busy"] is not None]
            out["gpu_busy"] = statistics.fmean(busy) if busy else None
            out["goal_met"] = out["gpu_busy"] is not None and out["gpu_busy"] >= GOAL_BUSY
        return out

    @staticmethod
    def _frames_per_second(read: Callable[[str], int], paths: list[str]) -> dict[str, Any]:
        read(paths[0])  # warm-up
        t0 = time.perf_counter()
        frames = sum(read(p) for p in paths)
        seconds = time.perf_counter() - t0
        return {"status": "measured", "frames": frames, "seconds": seconds, "frames_per_second": frames / seconds}

    # Running -----------------------------------------------------------------------------------
    def run(self, only: list[str]) -> dict[str, dict[str, Any]]:
        for name in SECTIONS:
            if only and name not in only and name != "env":
                self.results[name] = {"status": "skipped", "reason": "not selected (--only)"}
                continue
            if time.perf_counter() > self.deadline:
                self.results[name] = {"status": "skipped", "reason": "the check's time budget was spent"}
                continue
            t0 = time.perf_counter()
            try:
                result = {"status": "measured", **getattr(self, name)()}
            except Skip as exc:
                result = {"status": "skipped", "reason": str(exc)}
            except Exception as exc:
                result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:500],
                          "traceback": traceback.format_exc()}
            result["seconds"] = round(time.perf_counter() - t0, 2)
            self.results[name] = result
            print(f"[gpu_check] {name}: {result['status']} ({result['seconds']:.1f}s)"
                  + (f": {result.get('reason') or result.get('error')}" if result["status"] != "measured" else ""),
                  file=sys.stderr, flush=True)
        return self.results


# -- the table ------------------------------------------------------------------------------------
def fmt(value: Any, spec: str = ".3g") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        return format(value, spec)
    return str(value)


def table_rows(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(section, figure, value) lines for the screen."""
    rows: list[tuple[str, str, str]] = []
    for name, r in results.items():
        if r["status"] != "measured":
            rows.append((name, r["status"], r.get("reason") or r.get("error", "")))
            continue
        if name == "env":
            rows.append((name, "device", f"{r.get('gpu', 'cpu')} (torch {r['torch']}, CUDA {r['cuda']}, "
                                         f"{r['cpus']} CPUs, {r['data_workers']} data workers)"))
        elif name == "step":
            for p, e in r["precisions"].items():
                if e.get("status") != "measured":
                    rows.append((name, p, f"skipped: {e.get('reason')}"))
                    continue
                text = f"{fmt(e['step_seconds'])} s/step, finite {fmt(e['finite'])}"
                if "peak_memory_gib" in e:
                    text += f", peak {e['peak_memory_gib']:.2f} GiB"
                if "max_loss_diff_vs_fp32" in e:
                    text += (f", |loss - fp32| {e['first_loss_diff_vs_fp32']:.2g} at step 1, <= "
                             f"{e['max_loss_diff_vs_fp32']:.2g} after (close {fmt(e['close_to_fp32'])})")
                if "grad_scaler_skipped_steps" in e:
                    text += f", GradScaler skipped {e['grad_scaler_skipped_steps']} step(s)"
                rows.append((name, p, text))
        elif name == "data":
            need = ", ".join(f"{k}: {v['workers_needed']}" for k, v in r["workers_needed_for_measured_steps"].items())
            rows.append((name, "one worker", f"{r['clips_per_second_one_worker']:.3g} clips/s augmented, "
                         f"{1 / r['seconds_per_clip_without_augment']:.3g} without (workers needed for the steps "
                         f"above: {need or '-'})"))
        elif name.startswith("train_"):
            rows.append((name, "data wait", f"{r['data_wait_share']:.1%} of the training pass, "
                                            f"{fmt(r['seconds_per_clip'])} s/clip, {r['data_workers']} workers"))
            busy = r.get("gpu_busy")
            rows.append((name, "GPU busy", r.get("gpu_busy_reason") if busy is None else
                         f"{busy:.1%} (goal >= {GOAL_BUSY:.0%}: {'met' if r.get('goal_met') else 'NOT met'})"))
        elif name == "decode":
            for k in ("pyav_cpu", "torchcodec_cpu", "torchcodec_cuda"):
                e = r[k]
                text = f"{e['frames_per_second']:.4g} frames/s" if e.get("status") == "measured" \
                    else f"skipped: {e.get('reason')}"
                if e.get("cpu_fallback"):
                    text += f" (FELL BACK TO THE CPU: {e.get('cpu_fallback_reason')})"
                rows.append((name, k, text))
        elif name == "ray":
            rows.append((name, f"num_gpus={r['num_gpus']}", f"{len(r['folds_done'])} folds in "
                         f"{r['wall_seconds']:.1f}s; GPUs used {r.get('gpus_used', '-')}; expected: {r['expected']}"))
    return rows


def print_table(results: dict[str, dict[str, Any]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for row in table_rows(results):
            print(" | ".join(row))
        return
    table = Table(title="fvc GPU check")
    for column in ("section", "figure", "value"):
        table.add_column(column, overflow="fold")
    for row in table_rows(results):
        table.add_row(*row)
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="tiny sizes, CPU allowed: every code path, in seconds")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON file (default: $OUT/gpu_check.json when $OUT is set, else "
                             "benchmarks/out/gpu_check[_dry].json)")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a fresh one under /tmp)")
    parser.add_argument("--budget", type=float, default=420.0,
                        help="seconds; sections not started by then are skipped (default 420)")
    parser.add_argument("--only", nargs="*", default=[], choices=SECTIONS, help="run only these sections")
    parser.add_argument("--seed-sizes", action="store_true",
                        help="with --dry: the seed's sizes (500 frames, 256 px) on the CPU, e.g. --only data")
    parser.add_argument("--videos", type=int, default=None, help="real videos made (as many fakes)")
    parser.add_argument("--timm-arch", default=None,
                        help="the timm architecture train_timm trains through fvc-timm (default: efficientnet_b4; "
                             "resnet10t with --dry)")
    parser.add_argument("--timm-model", default=None,
                        help="run train_timm with this registered model (e.g. naive_cnn, to try the face-crop "
                             "path before a timm plugin exists)")
    args = parser.parse_args(argv)
    with_ffmpeg_for_torchcodec(sys.argv[1:] if argv is None else list(argv))
    # The data workers fork this process: one torch thread each, as the trainer's own workers are
    # set up; the training loop keeps its own default.
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.path.insert(0, str(ROOT))
    if not args.dry and not cuda_available():
        print("error: no CUDA device here; run with --dry for the CPU mode", file=sys.stderr)
        return 2
    if args.out is None:
        base = Path(os.environ["OUT"]) if os.environ.get("OUT") else ROOT / "benchmarks" / "out"
        args.out = base / ("gpu_check_dry.json" if args.dry else "gpu_check.json")
    work = args.work or Path(__import__("tempfile").mkdtemp(prefix="fvc_gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    check = Check(args.dry, work, args.budget)
    check.timm_model = args.timm_model
    check.timm_arch = args.timm_arch or ("resnet10t" if args.dry else "efficientnet_b4")
    if args.seed_sizes:
        check.sizes = GPU_SIZES
    if args.only == ["ray"] and not args.videos:
        args.videos = 4  # two folds of naive_cnn need few videos: Ray's own call stays short
    if args.videos:
        check.sizes = dataclasses.replace(check.sizes, videos=args.videos)
    results = check.run(args.only)
    total = time.perf_counter() - started
    report = {"dry": args.dry, "sizes": dataclasses.asdict(check.sizes), "seconds": total,
              "goal_gpu_busy": GOAL_BUSY, "work": str(work), "sections": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=str))
    print_table(results)
    print(f"{total:.0f}s; JSON: {args.out}; logs and videos: {work}")
    failed = any(r["status"] == "failed" for r in results.values())
    if os.environ.get("FVC_GPU_CHECK_FFMPEG"):
        shutil.rmtree(os.environ["FVC_GPU_CHECK_FFMPEG"], ignore_errors=True)
    if args.work is None and not failed and not os.environ.get("FVC_GPU_CHECK_KEEP"):
        shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
