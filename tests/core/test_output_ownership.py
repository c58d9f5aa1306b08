"""Every command's ``-o FILE`` replaces only that command's own earlier output (fvc_core/output_file.py).

Through the real ``fvc`` executable: a user's file, another command's output (``fvc predict -o`` onto a
training table ``fvc index`` wrote) and fvc's own output edited since are refused in one line naming the
file, exit 2, and left byte for byte as they were; running the same command again onto its own output
works. A folder, a file where a folder should be, and a read-only file system are one line, never a
traceback.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import polars as pl
import pytest

from tests.builders import fvc
from tests.tmpfs import mounted_tmpfs


def refused(done: subprocess.CompletedProcess, path: Path) -> str:
    """The one error line of a refusal that names ``path``."""
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    return lines[0]


@pytest.fixture(scope="module")
def videos(tiny_run) -> Path:
    return tiny_run.parent.parent / "videos"


def test_predict_replaces_its_own_scores_but_never_a_users_file_or_a_training_table(tiny_run, videos, tmp_path):
    scores = tmp_path / "scores.csv"
    first = fvc("predict", str(tiny_run), str(videos / "real"), "-o", str(scores))
    assert first.returncode == 0, first.stderr
    written = scores.read_bytes()
    again = fvc("predict", str(tiny_run), str(videos / "real"), "-o", str(scores))  # re-running is normal
    assert again.returncode == 0, again.stderr
    assert scores.read_bytes() == written and pl.read_csv(scores).height == 6

    mine = tmp_path / "mine.csv"
    mine.write_bytes(b"video,my notes\nx.mp4,keep me\n")
    line = refused(fvc("predict", str(tiny_run), str(videos / "real"), "-o", str(mine)), mine)
    assert "not replaced" in line and "delete it yourself" in line
    assert mine.read_bytes() == b"video,my notes\nx.mp4,keep me\n"

    # The run's own training table, and a table fvc index wrote: not predict's to replace either.
    training = videos / "with_broken.parquet"
    before = training.read_bytes()
    refused(fvc("predict", str(tiny_run), str(videos / "real"), "-o", str(training)), training)
    assert training.read_bytes() == before
    table = tmp_path / "metadata.parquet"
    assert fvc("index", str(videos), "-o", str(table)).returncode == 0
    indexed = table.read_bytes()
    line = refused(fvc("predict", str(tiny_run), str(videos / "real"), "-o", str(table)), table)
    assert "a table of fvc index, not scores of fvc predict" in line
    assert table.read_bytes() == indexed

    # fvc's own scores, edited by the user since: theirs now.
    scores.write_bytes(written + b"# checked by hand\n")
    line = refused(fvc("predict", str(tiny_run), str(videos / "real"), "-o", str(scores)), scores)
    assert "changed since fvc wrote it" in line
    assert scores.read_bytes() == written + b"# checked by hand\n"


def test_index_and_verify_replace_only_their_own_table(videos, tmp_path):
    mine = tmp_path / "mine.parquet"
    pl.DataFrame({"video_path": ["a.mp4"], "note": ["mine"]}).write_parquet(mine)
    before = mine.read_bytes()
    refused(fvc("index", str(videos), "-o", str(mine)), mine)
    refused(fvc("verify", str(videos / "with_broken.parquet"), "-o", str(mine)), mine)
    assert mine.read_bytes() == before

    table = tmp_path / "tables" / "metadata.csv"  # a missing parent folder is made, as always
    for _ in range(2):
        done = fvc("index", str(videos), "-o", str(table))
        assert done.returncode == 0, done.stderr
    assert pl.read_csv(table).height == 13  # 12 clips and broken.mp4
    bad = tmp_path / "bad.csv"
    for _ in range(2):
        done = fvc("verify", str(table), "num_frames=2", "size=32", "-o", str(bad))
        assert done.returncode == 2 and "1 of 13 videos cannot be read" in done.stdout, done.stdout + done.stderr
    assert pl.read_csv(bad)["video_path"].to_list() == [str(videos / "fake/broken.mp4")]
    listing = sorted(p.name for p in tmp_path.rglob("*"))
    assert not [n for n in listing if ".tmp" in n], listing


def test_a_folder_or_a_file_in_the_way_is_one_line(tiny_run, videos, tmp_path):
    folder = tmp_path / "existing_folder"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    assert "is a folder" in refused(fvc("index", str(videos), "-o", str(folder)), folder)
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]
    html_folder = tmp_path / "pages.html"
    html_folder.mkdir()
    assert "is a folder" in refused(fvc("report", str(tiny_run), "-o", str(html_folder)), html_folder)
    in_file = tmp_path / "notes.txt" / "t.parquet"
    (tmp_path / "notes.txt").write_text("mine")
    assert "is a file, not a folder" in refused(fvc("index", str(videos), "-o", str(in_file)), in_file)
    link = tmp_path / "link.csv"
    link.symlink_to(tmp_path / "notes.txt")
    assert "symbolic link" in refused(fvc("predict", str(tiny_run), str(videos / "real"), "-o", str(link)), link)
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.fixture
def read_only(tmp_path):
    """A read-only tmpfs mounted for the test (root ignores chmod, so a real read-only file system)."""
    with mounted_tmpfs(tmp_path / "ro", "ro,size=1m", "a read-only file system is not tested here") as mount:
        yield mount


def test_a_read_only_file_system_is_one_line(tiny_run, videos, read_only):
    for args, path in ((["report", str(tiny_run), "--no-samples"], read_only / "report.html"),
                       (["index", str(videos)], read_only / "metadata.parquet"),
                       (["predict", str(tiny_run), str(videos / "real")], read_only / "scores.csv")):
        assert "read-only" in refused(fvc(*args, "-o", str(path)), path)


def test_a_250_byte_output_name_is_written_and_replaced_again(tiny_run, videos, tmp_path):
    scores = tmp_path / ("s" * 246 + ".csv")
    for _ in range(2):
        done = fvc("predict", str(tiny_run), str(videos / "real"), "-o", str(scores))
        assert done.returncode == 0, done.stderr
    assert pl.read_csv(scores).height == 6
    assert all(len(os.fsencode(p.name)) <= 255 for p in tmp_path.iterdir())


def test_explain_of_a_video_with_a_240_character_name(tiny_run, videos, tmp_path):
    video = tmp_path / ("e" * 236 + ".mp4")  # its figures are named <stem>_gradcam_fold_0.png: 255 bytes
    shutil.copy(videos / "real/src_0000.mp4", video)
    done = fvc("explain", str(tiny_run), str(video), "-o", str(tmp_path / "why"), "--frames", "2")
    assert done.returncode == 0, done.stderr
    figures = sorted(p.name for p in (tmp_path / "why").iterdir() if p.name != ".fvc-owned")
    assert figures == [f"{video.stem}_frame_scores.png", f"{video.stem}_gradcam_fold_0.png",
                       f"{video.stem}_gradcam_fold_1.png"]
