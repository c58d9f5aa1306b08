"""``fvc prepare -o OUT`` writes only into a folder it made: never over a user's files there."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest
from fvc_loaders.prepare import Encoding, prepare
from fvc_loaders.reader import probe

from fvc_core import ownership
from fvc_core.cli import main
from fvc_core.errors import UserError
from tests.loaders.videos import make_video

SMALL = Encoding(size=32)


@pytest.fixture
def table(tmp_path) -> Path:
    data = tmp_path / "data"
    for label in ("real", "fake"):
        (data / label).mkdir(parents=True)
        make_video(data / label / "a.mp4", frames=6, width=48, height=32)
    path = data / "metadata.parquet"
    pl.DataFrame({"video_path": ["real/a.mp4", "fake/a.mp4"], "label": ["real", "fake"]}).write_parquet(path)
    return path


def files_in(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_folder_of_the_users_is_refused_and_left_as_it_was(table, tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "real").mkdir(parents=True)
    # Their own files at the names prepare writes: a video would pass for a finished copy, the tables be replaced.
    (out / "real" / "a.mp4").write_bytes(b"my video")
    (out / "scaled_metadata.parquet").write_bytes(b"my table")
    (out / "bad_videos.parquet").write_bytes(b"my list")
    before = files_in(out)

    with pytest.raises(UserError, match=f"^{out}: holds files fvc did not make"):
        prepare(table, out, encoding=SMALL, workers=1)
    assert main(["prepare", str(table), "-o", str(out), "--size", "32", "-j", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {out}: holds files fvc did not make")
    assert files_in(out) == before


def test_an_output_folder_prepared_before_markers_is_resumed(table, tmp_path):
    out = tmp_path / "stage3"
    prepare(table, out, encoding=SMALL, workers=1)
    (out / ownership.MARKER).unlink()  # as the version before markers left it: prepare.json only
    (out / "fake" / "a.mp4").unlink()
    result = prepare(table, out, encoding=SMALL, workers=1)
    assert (result.written, result.already_done) == (1, 1)
    assert probe(out / "fake" / "a.mp4").frame_count == 6
    assert (out / ownership.MARKER).is_file()


def test_a_killed_workers_half_written_copy_is_removed_on_the_next_run(table, tmp_path):
    import subprocess

    out = tmp_path / "out"
    prepare(table, out, encoding=SMALL, workers=1)
    # What a worker SIGKILLed mid-copy leaves: its temporary file, named with its (now dead) pid.
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = out / "real" / f".a.mp4.mp4.{dead.pid}.tmp.mp4"
    stale.write_bytes(b"half a copy")
    live = out / "fake" / f".a.mp4.mp4.{os.getpid()}.tmp.mp4"  # a prepare still writing: not ours to touch
    live.write_bytes(b"being written")
    prepare(table, out, encoding=SMALL, workers=1)
    assert not stale.exists() and live.exists()
