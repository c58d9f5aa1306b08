"""``--face-align``: a real face photographed tilted comes out upright, on the canonical face, the same
bytes run after run; the settings are recorded; a detector without landmarks is refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from fvc_faces import align, tracking
from fvc_faces.mtcnn_detector import MTCNNDetector
from fvc_faces.prepare import FaceSettings, prepare_faces
from fvc_loaders.prepare import Encoding
from fvc_loaders.prepare_tools import prepare_tools
from fvc_loaders.reader import iter_frames

from fvc_core.cli import main
from tests.faces.photos import PHOTOS, place
from tests.faces.test_faces import write_table

TOOLS = prepare_tools()  # what fvc prepare lends its --faces step

SIZE = 96
ALIGN = FaceSettings(detector="mtcnn", align=True)
ASTRONAUT = PHOTOS[0]


def tilted_video(path: Path, angle: float, frames: int = 6) -> None:
    """The astronaut's photograph tilted by ``angle`` degrees (counter-clockwise), drifting right."""
    image = ASTRONAUT.load()
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i in range(frames):
            picture, _ = place(ASTRONAUT, image, angle=angle, side=150, centre=(300 + 6 * i, 240))
            out.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        out.mux(stream.encode(None))


def eye_line_degrees(detector: MTCNNDetector, crop: np.ndarray) -> float:
    """The angle of the line from the picture's left eye to the other, as MTCNN finds them in ``crop``
    (positive: the right-hand eye higher)."""
    (face,) = detector.detect(crop)
    (lx, ly), (rx, ry) = np.asarray(face[5:9]).reshape(2, 2)
    return float(np.degrees(np.arctan2(ly - ry, rx - lx)))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("align") / "data"
    tilted_video(data / "real" / "tilted.mp4", angle=25)
    tilted_video(data / "real" / "upright.mp4", angle=0)
    return write_table(data, [("real/tilted.mp4", "real", "t"), ("real/upright.mp4", "real", "u")])


def test_a_tilted_real_face_comes_out_upright_on_the_canonical_face(prepared, tmp_path):
    out = tmp_path / "aligned"
    prepare_faces(prepared, out, tools=TOOLS, encoding=Encoding(size=SIZE), faces=ALIGN, workers=0)
    plain = tmp_path / "plain"
    prepare_faces(prepared, plain, tools=TOOLS, encoding=Encoding(size=SIZE), faces=FaceSettings(detector="mtcnn"),
                  workers=0)

    detector = MTCNNDetector(device="cpu")
    tilted = list(iter_frames(out / "real" / "tilted.mp4"))
    upright = list(iter_frames(out / "real" / "upright.mp4"))
    unaligned = list(iter_frames(plain / "real" / "tilted.mp4"))
    assert len(tilted) == 6 and tilted[0].shape == (SIZE, SIZE, 3)
    close = []
    for i in range(6):
        # The control: cut square without alignment, the eyes keep the photograph's 25 - 2.4 degrees.
        assert 15 < eye_line_degrees(detector, unaligned[i]) < 30, i
        # Aligned: the eye line horizontal (the template's is -0.3 degrees).
        assert abs(eye_line_degrees(detector, tilted[i])) < 3, i
        # ... and the picture is the upright photograph's aligned crop (the canonical face), which the
        # unaligned one is far from (measured: 6-21 levels, the end frames' landmarks least smoothed,
        # against 60-63).
        close.append(np.abs(tilted[i].astype(float) - upright[i]).mean())
        assert close[-1] < 30 and 45 < np.abs(unaligned[i].astype(float) - upright[i]).mean(), (i, close)
        # The eyes where the template puts them (within 3 % of the crop).
        (face,) = detector.detect(tilted[i])
        eyes = np.asarray(face[5:9]).reshape(2, 2)
        assert np.abs(eyes - align.canonical(SIZE, 1.3)[:2]).max() < 0.03 * SIZE, (i, eyes)

    assert np.mean(close) < 12, close

    faces = json.loads((out / "prepare.json").read_text())["faces"]
    assert faces["align"] is True and faces["margin"] == 0.3
    assert faces["alignment"] == {"template": align.TEMPLATE, "scale": 1.3,
                                  "transform": "similarity, least squares (scikit-image)",
                                  "landmarks_smoothing": 5}
    # Each frame's five smoothed landmarks are in the boxes file the crops were cut from.
    record = json.loads((out / ".faces" / "real" / "tilted.mp4.json").read_text())
    assert np.asarray(record["landmarks"]).shape == (1, 6, 10)

    # The same crops bit for bit, run after run.
    again = tmp_path / "again"
    prepare_faces(prepared, again, tools=TOOLS, encoding=Encoding(size=SIZE), faces=ALIGN, workers=0)
    for name in ("real/tilted.mp4", "real/upright.mp4", ".faces/real/tilted.mp4.json"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_landmarks_are_smoothed_through_time_like_the_boxes():
    rng = np.random.default_rng(0)
    steady = np.array([[100 + 2 * i + 10 * k for k in range(10)] for i in range(20)], dtype=float)
    noisy = steady + rng.normal(0, 2, steady.shape)
    track = tracking.Track(list(range(20)), [(0, 0, 10, 10)] * 20, [tuple(r) for r in noisy])
    smooth = tracking.landmarks_path(track, 20, smoothing=5)
    assert np.abs(smooth - steady).mean() < np.abs(noisy - steady).mean() / 1.5
    # Without noise, steady motion comes out exactly, seen on every other frame (interpolated between)
    # and ends included (a centred window: no lag).
    clean = tracking.Track(list(range(0, 19, 2)), [(0, 0, 10, 10)] * 10, [tuple(r) for r in steady[:19:2]])
    assert np.allclose(tracking.landmarks_path(clean, 19, smoothing=5), steady[:19])
    # A detector without landmarks: none to smooth.
    assert tracking.landmarks_path(tracking.Track([0], [(0, 0, 10, 10)], [None]), 3, 3) is None


def test_align_with_a_detector_without_landmarks_is_one_line(prepared, tmp_path, capsys):
    out = tmp_path / "x"
    code = main(["prepare", str(prepared), "-o", str(out), "--faces", "--face-align"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err == ("error: --face-align: face detector 'opencv-haar' gives no landmarks "
                   "(--face-detector mtcnn does)")
    assert not out.exists()


def test_aligned_crops_are_the_same_bytes_in_worker_processes_and_in_this_one(prepared, tmp_path):
    """A spawned worker (one torch thread, ``-j 2``) and this process (two threads) find the same
    landmarks and write the same files (before MTCNN ran on one thread, the boxes differed in the
    second decimal)."""
    import os
    import subprocess
    import sys

    import polars as pl
    import torch

    one = prepared.parent / "tilted.parquet"  # one video: one worker to start
    pl.read_parquet(prepared).filter(pl.col("source_id") == "t").write_parquet(one)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        prepare_faces(one, tmp_path / "here", tools=TOOLS, encoding=Encoding(size=SIZE), faces=ALIGN, workers=0)
    finally:
        torch.set_num_threads(threads)
    done = subprocess.run([sys.executable, "-m", "fvc_core.cli", "prepare", str(one), "-o",
                           str(tmp_path / "workers"), "--faces", "--face-detector", "mtcnn", "--face-align",
                           "--size", str(SIZE), "-j", "2"],
                          cwd=Path(__file__).resolve().parents[2], env={**os.environ, "CI": "1"},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("real/tilted.mp4", ".faces/real/tilted.mp4.json"):
        assert (tmp_path / "workers" / name).read_bytes() == (tmp_path / "here" / name).read_bytes(), name
