"""``fvc prepare --faces`` writes the same crops every time: across copies of one video in a run, across
two runs, and after a run killed mid-way and resumed (the real ``fvc`` command, real H.264 files).

``--size 100``, where the same crops were measured to encode to different files before (``fvc_loaders.yuv``
says why); ``tests/loaders/test_yuv.py`` checks the frames the encoder is given. Plain ``fvc prepare``
shares the encoder and is checked across copies too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fvc_loaders.reader import iter_frames

from tests.faces.test_faces import write_table
from tests.faces.videos import face_video, moving

FVC = [sys.executable, "-m", "fvc_core.cli"]
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
COPIES = 12


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> Path:
    """One face video and 11 byte-identical copies of it, each its own row (a face that grows and moves
    towards the frame's edge: the content where crops were seen to differ most often before)."""
    data = tmp_path_factory.mktemp("same") / "data"
    # 16 frames: enough for tests/gated_fvc.py to park a crop half-written (after 12).
    face_video(data / "real" / "v0.mp4", moving(16, (100, 110, 100), (215, 125, 170)))
    for k in range(1, COPIES):
        shutil.copy(data / "real" / "v0.mp4", data / "real" / f"v{k}.mp4")
    return write_table(data, [(f"real/v{k}.mp4", "real", f"v{k}") for k in range(COPIES)])


def prepare(table: Path, out: Path, *extra: str, prefix: tuple[str, ...] = tuple(FVC),
            faces: bool = True) -> subprocess.Popen:
    return subprocess.Popen([*prefix, "prepare", str(table), "-o", str(out), *(["--faces"] if faces else []),
                             "--size", "100", *extra],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc: subprocess.Popen) -> None:
    output, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, output


def clips(out: Path) -> list[Path]:
    return [out / "real" / f"v{k}.mp4" for k in range(COPIES)]


def decoded(path: Path) -> np.ndarray:
    return np.stack(list(iter_frames(path)))


def files(out: Path) -> set[str]:
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def test_copies_of_one_video_and_two_runs_give_the_same_crops_bit_for_bit(table, tmp_path):
    first, second = tmp_path / "first", tmp_path / "second"
    finish(prepare(table, first, "-j", "2"))
    finish(prepare(table, second, "-j", "2"))

    reference = decoded(first / "real" / "v0.mp4")
    assert reference.shape == (16, 100, 100, 3)
    for path in clips(first) + clips(second):
        # The pictures first (what training sees), then the files (x264 is deterministic given them).
        assert np.array_equal(decoded(path), reference), path
        assert path.read_bytes() == (first / "real" / "v0.mp4").read_bytes(), path


def test_plain_prepare_gives_copies_of_one_video_the_same_bytes(table, tmp_path):
    out = tmp_path / "plain"
    finish(prepare(table, out, "-j", "2", faces=False))
    files = {path.read_bytes() for path in clips(out)}
    assert len(files) == 1


def test_a_killed_and_resumed_prepare_ends_identical_to_an_uninterrupted_one(table, tmp_path):
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    finish(prepare(table, whole, "-j", "2"))

    # Parked (tests/gated_fvc.py) 12 frames into the second crop, once the first is written: killed with
    # its boxes all found, one crop done and one half-written.
    parked = tmp_path / "parked"
    gated = (sys.executable, "-m", "tests.gated_fvc", str(resumed / "real" / "v0.mp4"), str(parked))
    killed = prepare(table, resumed, "-j", "1", prefix=gated)
    deadline = time.monotonic() + 240
    while not parked.exists():
        assert killed.poll() is None, killed.communicate()[0]
        assert time.monotonic() < deadline, "the first crop was never written"
        time.sleep(0.05)
    killed.send_signal(signal.SIGKILL)
    killed.communicate()
    assert not (resumed / "scaled_metadata.parquet").exists()
    assert len(list((resumed / ".faces" / "real").glob("*.json"))) == COPIES
    assert len(list((resumed / "real").iterdir())) == 2  # v0.mp4 and the half-written second crop

    finish(prepare(table, resumed, "-j", "2"))
    # Nothing more, nothing less (the half-written file is gone), and the same bytes.
    assert files(resumed) == files(whole)
    for name in sorted(files(whole)):
        if name.endswith((".mp4", ".json")):
            assert (resumed / name).read_bytes() == (whole / name).read_bytes(), name
    table = "scaled_metadata.parquet"
    assert pl.read_parquet(resumed / table).equals(pl.read_parquet(whole / table))
