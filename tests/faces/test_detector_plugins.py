"""A user's own face detector, from an installed distribution, through the door the built-in one uses."""

from __future__ import annotations

import json

import polars as pl
import pytest
from fvc_faces.detectors import available_detectors
from fvc_faces.prepare import FaceSettings, prepare_faces
from fvc_loaders.prepare import Encoding
from fvc_loaders.prepare_tools import prepare_tools
from fvc_loaders.reader import iter_frames

from fvc_core.cli import main
from tests.faces.videos import background

TOOLS = prepare_tools()  # what fvc prepare lends its --faces step (the prepare_run hook)

# Finds "faces" that are pure red in RGB: handed BGR, it would see blue and find nothing.
PLUGIN = '''
import numpy as np
from fvc_core.contract import hookimpl

class RedDetector:
    name = "red-square"
    version = "red 1.0 (weights: none)"

    def detect(self, frame):
        r, g, b = (frame[..., k].astype(int) for k in range(3))
        ys, xs = np.nonzero((r > 180) & (g < 80) & (b < 80))
        if len(xs) == 0:
            return []
        return [(xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 1.0)]

@hookimpl
def register_face_detectors(register):
    register("red-square", RedDetector, description="a red square is a face")
'''


@pytest.fixture
def red_plugin(install_plugin):
    install_plugin("fvctest-red", PLUGIN, entry_point="red")


def red_square_video(path, frames: int = 8) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(frames):
            frame = background(160, 120)
            frame[40:80, 20 + 8 * i : 60 + 8 * i] = (255, 0, 0)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        out.mux(stream.encode(None))


def test_a_detector_plugin_is_taken_by_name_and_sees_rgb(tmp_path, red_plugin):
    assert available_detectors()["red-square"].plugin == "red"
    red_square_video(tmp_path / "data" / "real" / "r.mp4")
    table = tmp_path / "data" / "metadata.parquet"
    pl.DataFrame({"video_path": ["real/r.mp4"], "label": ["real"]}).write_parquet(table)
    out = tmp_path / "out"

    prepare_faces(table, out, tools=TOOLS, encoding=Encoding(size=32),
                  faces=FaceSettings(detector="red-square", margin=0.0),
                  workers=0)

    scaled = pl.read_parquet(out / "scaled_metadata.parquet")
    assert scaled.select("face_crop", "face_frames_missing").rows() == [("face", 0)]
    recorded = json.loads((out / "prepare.json").read_text())["faces"]
    assert (recorded["detector"], recorded["detector_version"]) == ("red-square", "red 1.0 (weights: none)")
    # RGB out: the crop of a red square (no margin) is red, following it as it moves.
    for crop in iter_frames(out / "real" / "r.mp4"):
        centre = crop[8:24, 8:24].reshape(-1, 3).mean(0)
        assert centre[0] > 200 and centre[1] < 60 and centre[2] < 60


def test_a_disabled_plugin_s_detector_is_unknown(tmp_path, red_plugin, capsys):
    red_square_video(tmp_path / "r.mp4", frames=2)
    table = tmp_path / "metadata.parquet"
    pl.DataFrame({"video_path": ["r.mp4"], "label": ["real"]}).write_parquet(table)
    assert main(["-p", "no:red", "prepare", str(table), "-o", str(tmp_path / "out"), "--faces",
                 "--face-detector", "red-square"]) == 2
    assert "--face-detector 'red-square': unknown face detector" in capsys.readouterr().err
