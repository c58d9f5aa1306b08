"""File names near Linux's 255-byte limit go through every command that writes beside them.

A 240-character name is legal, but ``.<name>.<pid>.tmp.mp4`` (prepare's temporary name) was not:
``fvc prepare`` (with or without ``--faces``) failed with ``OSError: File name too long``. Temporary
names and records beside a file are now cut and hashed where they would pass the limit, and a copy's
own name (``<name>.mp4`` for a 251-character ``.mkv``) is shortened the same way.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from fvc_core.atomic import NAME_MAX, hidden_beside, temporary_name
from tests.faces.videos import face_video, moving

FVC = [sys.executable, "-m", "fvc_core.cli"]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}


def fvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*FVC, *args], capture_output=True, text=True, env=ENV, timeout=300, cwd=cwd)


@pytest.mark.parametrize("name", ["a.mp4", "r" * 236 + ".mp4", "é" * 125 + ".mp4", "x" * 255])
def test_names_beside_a_file_stay_within_the_limit_and_keep_the_pid_last(tmp_path, name):
    path = tmp_path / name
    tmp = temporary_name(path, per_process=True, suffix=".mp4")
    assert len(os.fsencode(tmp.name)) <= NAME_MAX and tmp.parent == tmp_path
    assert tmp.name.endswith(f".{os.getpid()}.tmp.mp4")  # where prepare's cleaner reads a dead writer's pid
    tmp.write_bytes(b"")  # the file system takes it
    record = hidden_beside(path, ".fvc-owned")
    assert len(os.fsencode(record.name)) <= NAME_MAX and record.name.startswith(".")
    if len(os.fsencode(f".{name}.{os.getpid()}.tmp.mp4")) <= NAME_MAX:
        assert tmp.name == f".{name}.{os.getpid()}.tmp.mp4"  # a short name's temporary is as it always was
    else:  # two long names that differ only at the end get different temporaries
        assert hidden_beside(tmp_path / (name[:-1] + "z"), ".tmp") != hidden_beside(path, ".tmp")


def test_240_and_251_character_video_names_go_through_index_prepare_and_faces(tmp_path):
    data = tmp_path / "data"
    real = data / "real" / ("r" * 236 + ".mp4")  # 240 characters
    fake = data / "fake" / ("f" * 247 + ".mkv")  # 251: its copy "<name>.mp4" would pass 255 bytes
    path = moving(6, (120, 110, 110), (150, 120, 120))
    face_video(real, path)
    face_video(fake, path)

    done = fvc("index", "data", "-o", "data/metadata.parquet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr

    done = fvc("prepare", "data/metadata.parquet", "-o", "prep", "--size", "32", "-j", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    scaled = pl.read_parquet(tmp_path / "prep/scaled_metadata.parquet")
    copies = {label: tmp_path / "prep" / p for p, label in scaled.select("video_path", "label").iter_rows()}
    assert {label: c.is_file() and c.stat().st_size > 0 for label, c in copies.items()} == {"real": True, "fake": True}
    assert copies["real"].name == real.name  # a name that fits is kept
    assert copies["fake"].name.startswith("f" * 200) and copies["fake"].name.endswith(".mp4")
    assert len(os.fsencode(copies["fake"].name)) <= 240
    again = fvc("prepare", "data/metadata.parquet", "-o", "prep", "--size", "32", "-j", "1", cwd=tmp_path)
    assert again.returncode == 0 and "0 videos scaled, 2 already done" in again.stdout, again.stderr

    done = fvc("prepare", "data/metadata.parquet", "-o", "faces", "--faces", "--face-mode", "each",
               "--size", "32", "-j", "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    clips = pl.read_parquet(tmp_path / "faces/scaled_metadata.parquet")
    assert clips.height >= 2
    assert all((tmp_path / "faces" / p).is_file() for p in clips["video_path"])
    leftovers = [p.name for p in tmp_path.rglob("*") if ".tmp" in p.name]
    assert leftovers == []
