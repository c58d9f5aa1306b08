"""``--face-smoothing N``: the boxes ``fvc prepare --faces`` writes are the documented centred moving average
(docs/faces.md), recomputed here apart in numpy from the same run's unsmoothed boxes; an even N is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from fvc_faces.prepare import FaceSettings, prepare_faces
from fvc_loaders.prepare import Encoding
from fvc_loaders.prepare_tools import prepare_tools

from tests.faces.test_faces import write_table
from tests.faces.videos import face_video

TOOLS = prepare_tools()  # what fvc prepare lends its --faces step (the prepare_run hook)

FVC = [sys.executable, "-m", "fvc_core.cli"]
FRAMES = 12


def centred_mean(raw: np.ndarray, window: int) -> np.ndarray:
    """docs/faces.md: frame t is the mean of frames t-h..t+h, h = (window-1)/2 shrunk to min(h, t, last-t)."""
    out = np.empty_like(raw)
    for t in range(len(raw)):
        h = min((window - 1) // 2, t, len(raw) - 1 - t)
        out[t] = raw[t - h : t + h + 1].mean(axis=0)
    return out


def boxes(out: Path) -> np.ndarray:
    return np.array(json.loads((out / ".faces" / "real" / "a.mp4.json").read_text())["tracks"][0])


def test_the_written_boxes_are_the_documented_centred_moving_average(tmp_path):
    rng = np.random.default_rng(3)
    # A head drifting right and growing, shaken by a few pixels each frame: the jitter smoothing removes.
    placements = [[(110 + 6 * i + rng.normal(0, 4), 115 + rng.normal(0, 4), 100 + 3 * i)] for i in range(FRAMES)]
    data = tmp_path / "data"
    face_video(data / "real" / "a.mp4", placements)
    table = write_table(data, [("real/a.mp4", "real", "a")])
    small = Encoding(size=32)

    prepare_faces(table, tmp_path / "raw", tools=TOOLS, encoding=small, faces=FaceSettings(smoothing=1), workers=0)
    raw = boxes(tmp_path / "raw")
    assert raw.shape == (FRAMES, 3)
    for window in (3, 5):
        out = tmp_path / f"smoothed{window}"
        prepare_faces(table, out, tools=TOOLS, encoding=small, faces=FaceSettings(smoothing=window), workers=0)
        smoothed = boxes(out)
        # Both are written to 0.01 px: the average of rounded boxes is within 0.01 of the rounded average.
        assert np.abs(smoothed - centred_mean(raw, window)).max() <= 0.011, window
        # Not vacuous: the jitter moved the boxes by more than that.
        assert np.abs(smoothed - raw).max() > 1, window


def test_an_even_window_is_refused_in_one_line(tmp_path):
    data = tmp_path / "data"
    face_video(data / "real" / "a.mp4", [[(160, 120, 100)]] * 2)
    table = write_table(data, [("real/a.mp4", "real", "a")])
    for even in ("2", "4"):
        done = subprocess.run([*FVC, "prepare", str(table), "-o", str(tmp_path / "out"), "--faces",
                               "--face-smoothing", even], capture_output=True, text=True, timeout=120)
        assert done.returncode == 2, done.stderr
        assert done.stderr.splitlines() == [
            f"error: --face-smoothing {even}: expected an odd number of frames "
            "(a centred window: 1 for none, 3, 5, ...)"]
        assert not (tmp_path / "out").exists()
