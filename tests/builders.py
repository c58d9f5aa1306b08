"""What many test modules build the same way, written once: the tiny experiment on real encoded clips,
a throw-away plugin distribution (the fixtures around it are in tests/conftest.py: `site`,
`install_plugin`), the real `fvc` command, and a run parked at a known point to be killed there.

Plain functions, not fixtures, so that module- and session-scoped fixtures call them too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
# The real `fvc` command, as a user types it, in a quiet environment (no progress bars, one thread).
FVC = [sys.executable, "-m", "fvc_core.cli"]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}


def fvc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """``fvc ARGS`` as a separate process; its exit code and output, captured."""
    return subprocess.run([*FVC, *args], capture_output=True, text=True, env=ENV, timeout=600, cwd=cwd)


# A key given this value in an override is left out of the experiment (the plugin's default applies).
DROP = object()

TINY_DATA = {"name": "metadata", "group_column": "source_id", "num_frames": 4, "size": 32}
TINY_MODEL = {"name": "naive_cnn", "chunk_size": 2}
TINY_TRAINER = {"name": "supervised", "folds": 2, "epochs": 1, "grad_accum": 2, "warmup_epochs": 1,
                "num_workers": 0}


def tiny_videos(folder: Path, *, videos: int = 6, frames: int = 8, seed: int = 5) -> Path:
    """``videos`` real and as many fake 32x32 H.264 clips under ``folder``; returns their metadata table."""
    from fvc_loaders.synthetic import make_synthetic_dataset

    return make_synthetic_dataset(folder, videos=videos, frames=frames, frame_size=32, seed=seed)


def tiny_experiment(root: Path, videos: Path, *, file: str = "experiment.yaml", **overrides: Any) -> Path:
    """The tiny experiment (naive_cnn on the metadata table ``videos``, 2 folds of 1 epoch, console
    tracker, output in ``root/out``), written to ``root/file``; returns its path.

    An override of ``data``, ``model`` or ``trainer`` is merged into that section, any other replaces
    the top-level key; a value of ``DROP`` leaves its key out.
    """
    config: dict[str, Any] = {
        "experiment": "tiny", "seed": 3, "output_dir": str(root / "out"),
        "data": {**TINY_DATA, "metadata": str(videos)}, "model": dict(TINY_MODEL), "trainer": dict(TINY_TRAINER),
        "trackers": ["console"],
    }
    for key, value in overrides.items():
        if key in ("data", "model", "trainer"):
            config[key] = {k: v for k, v in {**config[key], **value}.items() if v is not DROP}
        elif value is DROP:
            config.pop(key, None)
        else:
            config[key] = value
    path = root / file
    path.write_text(yaml.safe_dump(config))
    return path


def write_distribution(site: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    """A minimal installed distribution in the folder ``site``: its modules and a .dist-info with
    entry_points.txt, found by importlib.metadata once ``site`` is on sys.path (or PYTHONPATH)."""
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    eps = "[fvc]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(eps)


def start_parked(gate: Path, parked: Path, log: Path, *args: str, env: dict[str, str], what: str,
                 deadline_s: float = 300) -> subprocess.Popen:
    """``fvc ARGS`` through tests/gated_fvc.py (its output in ``log``), returned once it parked at the first
    video read after ``gate`` exists: a known state in which the test kills it, not a time window.
    ``what`` says what never happened if it ends or the deadline passes first (it is then killed)."""
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.gated_fvc", str(gate), str(parked), *args],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + deadline_s
        while not parked.exists():
            assert proc.poll() is None, f"{what}: the run ended first\n{log.read_text()}"
            assert time.monotonic() < deadline, what
            time.sleep(0.05)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    return proc


def with_a_broken_video(table: Path) -> Path:
    """The table of ``tiny_videos`` plus one corrupt file (fake/broken.mp4), as with_broken.parquet beside it."""
    import polars as pl

    root = table.parent
    (root / "fake/broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    rows = pl.concat([pl.read_parquet(table), pl.DataFrame({"video_path": ["fake/broken.mp4"], "label": ["fake"],
                                                            "source_id": ["src_broken"]})])
    rows.write_parquet(root / "with_broken.parquet")
    return root / "with_broken.parquet"
