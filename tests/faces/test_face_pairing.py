"""A FaceForensics++ fake cut with its source video's boxes: ``fvc index --layout ffpp`` records each
fake's original in ``source_video`` and ``fvc prepare --faces`` pairs them, as the user types it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl

from tests.faces.videos import face_video, moving

FVC = str(Path(sys.executable).parent / "fvc")
VIDEOS = "original_sequences/youtube/c23/videos"
FAKES = "manipulated_sequences/Deepfakes/c23/videos"


def fvc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([FVC, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "COLUMNS": "1000"})


def ffpp_with_faces(root: Path) -> None:
    """Originals 000 and 003 (the face in two different places) and the swaps both ways: 000_003 is 000's
    frames (its geometry: the face where 000 has it) with a manipulation over the eyes."""
    where = {"000": moving(8, (110, 110, 110), (190, 125, 130)), "003": moving(8, (220, 120, 120), (150, 110, 100))}

    def swap(frame, i):
        frame[90:120, 60:260] = frame[90:120, 60:260, ::-1]

    for ident, path in where.items():
        face_video(root / VIDEOS / f"{ident}.mp4", path)
    face_video(root / FAKES / "000_003.mp4", where["000"], edit=swap)
    face_video(root / FAKES / "003_000.mp4", where["003"], edit=swap)
    (root / "splits").mkdir()
    for split, pairs in (("train", [["000", "003"]]), ("val", []), ("test", [])):
        (root / "splits" / f"{split}.json").write_text(json.dumps(pairs))


def test_an_ffpp_fake_is_cut_with_its_source_videos_boxes(tmp_path):
    root = tmp_path / "ffpp"
    ffpp_with_faces(root)
    table = tmp_path / "index.parquet"
    done = fvc("index", str(root), "--layout", "ffpp", "-o", str(table))
    assert done.returncode == 0, done.stderr
    source = {r["video_path"]: r["source_video"] for r in pl.read_parquet(table).iter_rows(named=True)}
    fake, other = f"ffpp/{FAKES}/000_003.mp4", f"ffpp/{FAKES}/003_000.mp4"
    assert (source[fake], source[other]) == (f"ffpp/{VIDEOS}/000.mp4", f"ffpp/{VIDEOS}/003.mp4")

    # One identity group holds both originals: only source_video says which one each fake is made from.
    out = tmp_path / "faces"
    done = fvc("prepare", str(table), "-o", str(out), "--faces", "--size", "32", "-j", "1")
    assert done.returncode == 0, done.stderr
    scaled = {r["video_path"]: r for r in pl.read_parquet(out / "scaled_metadata.parquet").iter_rows(named=True)}
    assert scaled[fake]["face_boxes_from"] == source[fake] and scaled[other]["face_boxes_from"] == source[other]
    assert not (out / ".faces" / "ffpp" / "manipulated_sequences").exists()  # no fake detected on its own
    faces = json.loads((out / "prepare.json").read_text())["faces"]
    assert faces["pair_column"] == "source_video" and faces["counts"]["fakes_without_source"] == 0
    assert "own boxes" not in done.stdout
    # source_video still names a row of the output table: the clip of the fake's original.
    assert scaled[scaled[fake]["source_video"]]["face_boxes_from"] == source[fake]

    # A table without original 000 (a subset the user made): 000_003 is detected on its own and named.
    subset = tmp_path / "subset.parquet"
    pl.read_parquet(table).filter(pl.col("video_path") != source[fake]).write_parquet(subset)
    alone = tmp_path / "alone"
    done = fvc("prepare", str(subset), "-o", str(alone), "--faces", "--size", "32", "-j", "1")
    assert done.returncode == 0, done.stderr
    assert f"000_003.mp4: its source {source[fake]} is not a real video of the table; detected on its own" \
        in " ".join(done.stdout.split())
    scaled = {r["video_path"]: r for r in pl.read_parquet(alone / "scaled_metadata.parquet").iter_rows(named=True)}
    assert scaled[fake]["face_boxes_from"] == fake and scaled[other]["face_boxes_from"] == source[other]
    assert (alone / ".faces" / fake).with_name("000_003.mp4.json").is_file()
    assert json.loads((alone / "prepare.json").read_text())["faces"]["counts"]["fakes_without_source"] == 1
    assert scaled[fake]["source_video"] is None  # its original is no row of this table


def test_plain_prepare_renames_source_video_with_the_copies(tmp_path):
    root = tmp_path / "ffpp"
    ffpp_with_faces(root)
    table = tmp_path / "tables" / "index.parquet"  # beside the data: its paths are ../ffpp/..., the copies external/
    assert fvc("index", str(root), "--layout", "ffpp", "-o", str(table)).returncode == 0
    done = fvc("prepare", str(table), "-o", str(tmp_path / "copies"), "--size", "32", "-j", "1")
    assert done.returncode == 0, done.stderr
    copies = pl.read_parquet(tmp_path / "copies" / "scaled_metadata.parquet")
    original = dict(zip(copies["video_path"], pl.read_parquet(table)["video_path"], strict=True))  # same order
    for row in copies.filter(pl.col("label") == "fake").iter_rows(named=True):
        assert original[row["source_video"]] == f"../ffpp/{VIDEOS}/{Path(row['video_path']).name[:3]}.mp4"
