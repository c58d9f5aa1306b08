"""``fvc prepare --faces`` on a real photograph's face moved, scaled, doubled, hidden: the crop holds it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from fvc_faces.prepare import FaceSettings, cut, prepare_faces, square
from fvc_loaders.letterbox import letterbox
from fvc_loaders.prepare import Encoding
from fvc_loaders.prepare_tools import prepare_tools
from fvc_loaders.reader import iter_frames

from fvc_core.cli import main
from tests.faces.videos import face_video, moving

TOOLS = prepare_tools()  # what fvc prepare lends its --faces step (the prepare_run hook)

SIZE = 64
SMALL = Encoding(size=SIZE)


def centre_side(box) -> tuple[float, float, float]:
    x0, y0, x1, y1 = box
    return (x0 + x1) / 2, (y0 + y1) / 2, max(x1 - x0, y1 - y0)


def write_table(folder: Path, rows: list[tuple[str, str, str]]) -> Path:
    path = folder / "metadata.parquet"
    pl.DataFrame(rows, schema=["video_path", "label", "source_id"], orient="row").write_parquet(path)
    return path


def expected_crop(frame: np.ndarray, box, margin: float = 0.3, shift: float = 0.0) -> np.ndarray:
    """The crop of ``frame`` around the true face box (moved by ``shift`` of its side), as fvc should cut it."""
    x, y, side = centre_side(box)
    return letterbox(cut(frame, *square((x + shift * side, y, side), margin)), SIZE).astype(float)


def coarse(picture: np.ndarray) -> np.ndarray:
    """8 x 8 blocks' mean colours: the layout of the crop, not the few pixels by which boxes differ."""
    return picture.reshape(8, SIZE // 8, 8, SIZE // 8, 3).mean((1, 3))


def test_the_crop_holds_a_moving_growing_face_in_rgb(tmp_path):
    data = tmp_path / "data"
    truth = face_video(data / "real" / "a.mp4", moving(12, (100, 110, 100), (215, 125, 170)))
    table = write_table(data, [("real/a.mp4", "real", "a")])
    out = tmp_path / "faces"

    result = prepare_faces(table, out, tools=TOOLS, encoding=SMALL, workers=0)

    scaled = pl.read_parquet(out / "scaled_metadata.parquet")
    assert scaled.select("video_path", "face_crop", "face_frames", "face_frames_missing").rows() == [
        ("real/a.mp4", "face", 12, 0)]
    assert (result.clips, result.written, result.no_face, result.bad) == (1, 1, [], [])
    track = json.loads((out / ".faces" / "real" / "a.mp4.json").read_text())["tracks"][0]
    originals = list(iter_frames(data / "real" / "a.mp4"))
    crops = list(iter_frames(out / "real" / "a.mp4"))
    assert len(crops) == 12 and crops[0].shape == (SIZE, SIZE, 3)
    for i, ((x, y, side), box) in enumerate(zip(track, truth, strict=True)):
        tx, ty, tside = centre_side(box[0])
        # The box follows the face as it moves 115 px and grows from 56 to 95 px.
        assert abs(x - tx) < 0.1 * tside and abs(y - ty) < 0.1 * tside, i
        assert abs(side - tside) < 0.15 * tside, i
        want = expected_crop(originals[i], box[0])
        got = crops[i].astype(float)
        # Measured: 1-11 levels; a crop a quarter of a face off (the control) is 45-50 away.
        assert np.abs(coarse(got) - coarse(want)).mean() < 15, i
        assert np.abs(coarse(got) - coarse(expected_crop(originals[i], box[0], shift=0.25))).mean() > 30, i
        # Colour order: the skin and hair make red far above blue; a BGR mix-up anywhere swaps them.
        assert got[..., 0].mean() - got[..., 2].mean() > 25
        assert np.abs(got.mean((0, 1)) - want.mean((0, 1))).max() < 6, i


def test_the_largest_of_two_faces_and_each_face_as_its_own_clip(tmp_path):
    data = tmp_path / "data"
    # The small head drifts towards the big one; the crop must stay on the big one throughout.
    placements = [[(70 + 4 * i, 120, 100), (230, 120 - i, 140)] for i in range(10)]
    truth = face_video(data / "real" / "two.mp4", placements)
    table = write_table(data, [("real/two.mp4", "real", "t")])

    prepare_faces(table, tmp_path / "largest", tools=TOOLS, encoding=SMALL, workers=0)
    track = json.loads((tmp_path / "largest" / ".faces" / "real" / "two.mp4.json").read_text())["tracks"]
    assert len(track) == 1
    for (x, y, _), faces in zip(track[0], truth, strict=True):
        big = centre_side(faces[1])
        assert abs(x - big[0]) < 10 and abs(y - big[1]) < 10

    prepare_faces(table, tmp_path / "each", tools=TOOLS, encoding=SMALL, faces=FaceSettings(mode="each"), workers=0)
    scaled = pl.read_parquet(tmp_path / "each" / "scaled_metadata.parquet")
    assert scaled.select("video_path", "face_index").rows() == [("real/two.face0.mp4", 0), ("real/two.face1.mp4", 1)]
    tracks = json.loads((tmp_path / "each" / ".faces" / "real" / "two.mp4.json").read_text())["tracks"]
    for k, which in ((0, 1), (1, 0)):  # largest first
        for (x, y, _), faces in zip(tracks[k], truth, strict=True):
            face = centre_side(faces[which])
            assert abs(x - face[0]) < 10 and abs(y - face[1]) < 10
    # Two rows of one video share a group, so a split never separates them.
    assert scaled["group"].n_unique() == 1


def test_frames_and_videos_without_a_face_are_counted_and_follow_the_policy(tmp_path):
    data = tmp_path / "data"
    still = [(160, 120, 120)]
    # Frames 4-6 have no face (the head leaves for three frames); the crop holds its place over the gap.
    truth = face_video(data / "real" / "gap.mp4", [[] if 4 <= i <= 6 else still for i in range(12)])
    face_video(data / "real" / "none.mp4", [[] for _ in range(8)])
    table = write_table(data, [("real/gap.mp4", "real", "g"), ("real/none.mp4", "real", "n")])

    result = prepare_faces(table, tmp_path / "skip", tools=TOOLS, encoding=SMALL, workers=0)
    out = tmp_path / "skip"
    assert pl.read_parquet(out / "scaled_metadata.parquet").select("video_path", "face_frames_missing").rows() == [
        ("real/gap.mp4", 3)]
    assert result.no_face == [str(data / "real" / "none.mp4")]
    assert pl.read_parquet(out / "no_face_videos.parquet").rows() == [("real/none.mp4", 8, 8)]
    counts = json.loads((out / "prepare.json").read_text())["faces"]["counts"]
    assert counts | {} == {"videos": 2, "clips": 1, "videos_without_face": 1, "full_frame_clips": 0,
                           "bad_videos": 0, "frames_checked": 20, "frames_missing": 11}
    track = json.loads((out / ".faces" / "real" / "gap.mp4.json").read_text())["tracks"][0]
    face = centre_side(truth[0][0])
    for x, y, side in track:
        assert abs(x - face[0]) < 6 and abs(y - face[1]) < 6 and abs(side - face[2]) < 10

    prepare_faces(table, tmp_path / "full", tools=TOOLS, encoding=SMALL, faces=FaceSettings(no_face="full_frame"),
                  workers=0)
    scaled = pl.read_parquet(tmp_path / "full" / "scaled_metadata.parquet")
    assert scaled.select("video_path", "face_crop", "face_frames_missing").rows() == [
        ("real/gap.mp4", "face", 3), ("real/none.mp4", "full_frame", 8)]
    whole = next(iter_frames(tmp_path / "full" / "real" / "none.mp4"))
    assert np.abs(whole.astype(float) - letterbox(next(iter_frames(data / "real" / "none.mp4")), SIZE)).mean() < 3
    assert not (tmp_path / "full" / "no_face_videos.parquet").exists()


def test_a_fake_is_cut_where_its_real_video_is(tmp_path):
    data = tmp_path / "data"
    path = moving(10, (110, 110, 110), (200, 125, 140))
    face_video(data / "real" / "a.mp4", path)

    def swap(frame, i):  # the manipulation: a recoloured square over the eyes
        frame[95:125, 120:200] = frame[95:125, 120:200, ::-1]

    face_video(data / "fake" / "a.mp4", path, edit=swap)
    table = write_table(data, [("real/a.mp4", "real", "a"), ("fake/a.mp4", "fake", "a")])

    prepare_faces(table, tmp_path / "same", tools=TOOLS, encoding=SMALL, workers=0)
    out = tmp_path / "same"
    scaled = pl.read_parquet(out / "scaled_metadata.parquet")
    assert scaled["face_boxes_from"].to_list() == ["real/a.mp4", "real/a.mp4"]
    assert not (out / ".faces" / "fake").exists()  # never detected on its own
    real, fake = (np.stack(list(iter_frames(out / p))).astype(float) for p in ("real/a.mp4", "fake/a.mp4"))
    # Same place: the bottom third of the crops (chin, below the swapped square) is the same picture.
    assert np.abs(real[:, -SIZE // 4 :] - fake[:, -SIZE // 4 :]).mean() < 3
    assert json.loads((out / "prepare.json").read_text())["faces"]["pair_column"] == "source_id"

    prepare_faces(table, tmp_path / "own", tools=TOOLS, encoding=SMALL, faces=FaceSettings(same_crop=False), workers=0)
    own = pl.read_parquet(tmp_path / "own" / "scaled_metadata.parquet")
    assert own["face_boxes_from"].to_list() == ["real/a.mp4", "fake/a.mp4"]
    assert (tmp_path / "own" / ".faces" / "fake" / "a.mp4.json").is_file()


def test_resumes_records_its_settings_and_refuses_to_mix(tmp_path):
    data = tmp_path / "data"
    face_video(data / "real" / "a.mp4", moving(6, (120, 110, 110), (160, 120, 120)))
    face_video(data / "fake" / "a.mp4", moving(6, (120, 110, 110), (160, 120, 120)))
    table = write_table(data, [("real/a.mp4", "real", "a"), ("fake/a.mp4", "fake", "a")])
    out = tmp_path / "faces"

    first = prepare_faces(table, out, tools=TOOLS, encoding=SMALL, workers=0)
    assert (first.detected, first.written, first.already_done) == (1, 2, 0)
    recorded = json.loads((out / "prepare.json").read_text())
    assert recorded["faces"]["detector"] == "opencv-haar"
    assert recorded["faces"]["detector_version"].startswith("opencv 4.")
    assert (recorded["faces"]["margin"], recorded["faces"]["smoothing"]) == (0.3, 5)

    (out / "fake" / "a.mp4").unlink()
    again = prepare_faces(table, out, tools=TOOLS, encoding=SMALL, workers=0)
    assert (again.detected, again.written, again.already_done) == (0, 1, 1)

    with pytest.raises(Exception, match="already holds copies made with"):
        prepare_faces(table, out, tools=TOOLS, encoding=SMALL, faces=FaceSettings(margin=0.5), workers=0)


def test_the_command_line_in_parallel_and_its_one_line_errors(tmp_path, capsys):
    data = tmp_path / "data"
    for name in ("a", "b"):
        face_video(data / "real" / f"{name}.mp4", moving(6, (120, 110, 110), (150, 120, 120)))
    table = write_table(data, [("real/a.mp4", "real", "a"), ("real/b.mp4", "real", "b")])

    assert main(["prepare", str(table), "-o", str(tmp_path / "out"), "--faces", "--size", "32", "-j", "2"]) == 0
    assert "2 face clips (2 written, 0 already done), 0 videos without a face, 0 bad" in capsys.readouterr().out
    assert pl.read_parquet(tmp_path / "out" / "scaled_metadata.parquet")["face_crop"].to_list() == ["face"] * 2

    assert main(["prepare", str(table), "-o", str(tmp_path / "x"), "--faces", "--face-detector", "haar"]) == 2
    assert "--face-detector 'haar': unknown face detector (did you mean 'opencv-haar'?)" in capsys.readouterr().err
    assert main(["prepare", str(table), "-o", str(tmp_path / "x"), "--faces", "--face-margin", "-1"]) == 2
    assert not (tmp_path / "x").exists()


def test_a_face_folder_made_before_align_and_frames_existed_still_resumes(tmp_path):
    # fvc before --face-align / --face-frames wrote prepare.json without those keys; running the same
    # command again on that folder must resume it, not refuse it for settings it ran with by default.
    data = tmp_path / "data"
    face_video(data / "real" / "a.mp4", moving(6, (120, 110, 100), (150, 120, 110)))
    table = write_table(data, [("real/a.mp4", "real", "a")])
    out = tmp_path / "faces"
    prepare_faces(table, out, tools=TOOLS, encoding=SMALL, workers=0)
    recorded = json.loads((out / "prepare.json").read_text())
    older = recorded | {"faces": {k: v for k, v in recorded["faces"].items() if k not in ("align", "frames")}}
    (out / "prepare.json").write_text(json.dumps(older))
    made = (out / "real" / "a.mp4").read_bytes()
    result = prepare_faces(table, out, tools=TOOLS, encoding=SMALL, workers=0)
    assert result.already_done == 1 and result.written == 0
    assert (out / "real" / "a.mp4").read_bytes() == made
    # ... and a folder made with one of them set is not taken for one made without.
    with pytest.raises(Exception, match="already holds copies made with"):
        prepare_faces(table, out, tools=TOOLS, encoding=SMALL, faces=FaceSettings(frames=4), workers=0)
