"""``--face-frames N``: the detector runs only on the frames a run with ``data.num_frames N`` (sampler
uniform) reads and their smoothing windows, and those frames get the boxes detecting every frame gives."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fvc_faces import sampled
from fvc_faces.prepare import FaceSettings, prepare_faces
from fvc_loaders.prepare import Encoding
from fvc_loaders.prepare_tools import prepare_tools
from fvc_loaders.reader import iter_frames, read_clip

from fvc_core.cli import main
from tests.faces.test_faces import write_table
from tests.faces.videos import face_video, moving

TOOLS = prepare_tools()  # what fvc prepare lends its --faces step

FRAMES, READ, SIZE = 30, 3, 64


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    data = tmp_path_factory.mktemp("frames") / "data"
    face_video(data / "real" / "a.mp4", moving(FRAMES, (100, 110, 100), (215, 125, 150)))
    return write_table(data, [("real/a.mp4", "real", "a")])


def boxes(out):
    return json.loads((out / ".faces" / "real" / "a.mp4.json").read_text())


def test_only_the_frames_read_are_detected_and_they_get_the_boxes_of_a_full_detection(table, tmp_path):
    full, few = tmp_path / "full", tmp_path / "few"
    prepare_faces(table, full, tools=TOOLS, encoding=Encoding(size=SIZE), workers=0)
    prepare_faces(table, few, tools=TOOLS, encoding=Encoding(size=SIZE), faces=FaceSettings(frames=READ), workers=0)

    read = sampled.read_frames(TOOLS, FRAMES, READ)
    assert read == [5, 15, 25]
    record, reference = boxes(few), boxes(full)
    # 3 frames and 2 on each side (--face-smoothing 5): half the frames of this clip.
    assert (record["frames"], record["frames_checked"], reference["frames_checked"]) == (FRAMES, 15, FRAMES)
    track, whole = np.asarray(record["tracks"][0]), np.asarray(reference["tracks"][0])
    assert np.array_equal(track[read], whole[read])
    # Between the windows the boxes are interpolated, not detected: they differ somewhere.
    assert not np.array_equal(track, whole)

    # The frames the reader takes from the face clip are those: the same pictures as the clip's
    # frames 5, 15, 25 (decoded in order), and nearly the full detection's clip's (the same crops,
    # encoded among other frames: measured 2 levels apart on average).
    clip = read_clip(few / "real" / "a.mp4", READ, SIZE).permute(0, 2, 3, 1).numpy()
    frames = list(iter_frames(few / "real" / "a.mp4"))
    assert np.array_equal(clip, np.stack([frames[i] for i in read]))
    other = read_clip(full / "real" / "a.mp4", READ, SIZE).permute(0, 2, 3, 1).numpy()
    assert np.abs(clip.astype(float) - other).mean() < 4

    settings = json.loads((few / "prepare.json").read_text())["faces"]
    assert settings["frames"] == READ and settings["counts"]["frames_checked"] == 15


def test_a_wrong_packet_count_is_caught_by_the_decoded_count(table, tmp_path, monkeypatch):
    # As if the stream's packets were not one frame each: the decoded count decides what is read.
    monkeypatch.setattr(sampled, "packet_count", lambda path: 18)
    prepare_faces(table, tmp_path / "out", tools=TOOLS, encoding=Encoding(size=SIZE), faces=FaceSettings(frames=READ),
                  workers=0)
    record = boxes(tmp_path / "out")
    assert record["frames"] == FRAMES
    checked = set(sampled.frames_to_check(TOOLS, 18, READ, 5)) | set(sampled.frames_to_check(TOOLS, FRAMES, READ, 5))
    assert record["frames_checked"] == len(checked)


def test_face_frames_with_face_every_is_one_line(table, tmp_path, capsys):
    args = ["prepare", str(table), "-o", str(tmp_path / "x"), "--faces", "--face-frames", "3", "--face-every", "2"]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --face-frames 3 and --face-every 2: one or the other (the frames a run reads, or every N-th frame)")
    assert main(["prepare", str(table), "-o", str(tmp_path / "x"), "--faces", "--face-frames", "0"]) == 2
    assert "error: --face-frames 0: expected 1 or more" in capsys.readouterr().err
