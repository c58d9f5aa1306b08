"""The PyAV frame reader on real small files: which frames it picks, upright and letterboxed, and its errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from fvc_core.errors import BadVideoError, UserError
from tests.loaders.videos import (
    available_encoders,
    index_of,
    make_audio_only,
    make_video,
    marker_corner,
    remux,
    truncate,
)

reader = pytest.importorskip("fvc_loaders.reader")
from fvc_loaders.letterbox import letterbox  # noqa: E402
from fvc_loaders.sampling import pick_on_screen, target_times  # noqa: E402

ENCODERS = available_encoders()


pytestmark = pytest.mark.usefixtures("two_core_decoder")


def expected(frames: int, num: int) -> list[int]:
    """The rule for evenly spaced frames: the frame on screen at the centre of each slice."""
    return pick_on_screen(np.arange(frames), target_times(0, frames, num))


def indices(clip: torch.Tensor) -> list[int]:
    return [index_of(frame) for frame in clip]


def needs(codec: str):
    return pytest.mark.skipif(codec not in ENCODERS, reason=f"this PyAV build has no {codec} encoder")


# --- formats ---------------------------------------------------------------------------------------

FORMATS = {
    "h264-gop250-bframes": dict(codec="libx264", gop=250, bframes=3, frames=30),
    "hevc": dict(codec="libx265", bframes=2),
    "hevc-10bit": dict(codec="libx265", pix_fmt="yuv420p10le"),
    "vp9-webm": dict(codec="libvpx-vp9"),
    "mjpeg-avi": dict(codec="mjpeg"),
    "mpeg4-avi-bframes": dict(codec="mpeg4", bframes=2, frames=20),
    "odd-size-444": dict(codec="libx264", width=67, height=45, pix_fmt="yuv444p"),
    "grey-h264": dict(codec="libx264", pix_fmt="gray"),
    "grey-hevc": dict(codec="libx265", pix_fmt="gray"),
    "with-audio": dict(codec="libx264", audio=True),
}


@pytest.mark.parametrize("name", FORMATS)
def test_reads_each_format_picking_the_right_frames(tmp_path, name):
    spec = dict(FORMATS[name])
    if spec["codec"] not in ENCODERS:
        pytest.skip(f"this PyAV build has no {spec['codec']} encoder")
    frames = spec.setdefault("frames", 12)
    path = make_video(tmp_path / name, **spec)

    clip = reader.read_clip(path, 5, 48)

    assert clip.shape == (5, 3, 48, 48) and clip.dtype == torch.uint8
    assert indices(clip) == expected(frames, 5)
    assert {marker_corner(frame) for frame in clip} == {"top_left"}


@pytest.mark.parametrize("suffix, container", [(".ts", "mpegts"), (".mkv", "matroska"), (".mov", "mov"),
                                               (".h264", "h264")])
def test_reads_other_containers_including_a_raw_stream_without_timestamps(tmp_path, suffix, container):
    source = make_video(tmp_path / "source", frames=40, gop=10, bframes=2)
    path = remux(source, tmp_path / f"copy{suffix}", container)
    clip = reader.read_clip(path, 6, 32)
    assert [i % 28 for i in expected(40, 6)] == indices(clip)
    assert len(list(reader.iter_letterboxed_frames(path, 16))) == 40


def test_letterbox_keeps_aspect_and_pads_with_black(tmp_path):
    path = make_video(tmp_path / "wide", width=96, height=48)  # 2:1 -> 64x32 inside 64x64
    clip = reader.read_clip(path, 3, 64)
    assert clip[:, :, :16].max() == 0 and clip[:, :, 48:].max() == 0  # black bars above and below
    picture = clip[:, :, 17:47]
    assert picture.float().mean() > 20  # the picture itself is there, full width
    assert clip[:, :, 17:47, :2].float().mean() > 10 and clip[:, :, 17:47, -2:].float().mean() > 10


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_rotation_metadata_gives_upright_frames(tmp_path, rotation):
    # Upright 64 wide x 96 tall (portrait), stored turned, marker top-left when upright.
    path = make_video(tmp_path / f"rot{rotation}", width=64, height=96, rotation=rotation)
    assert reader.probe(path).rotation % 360 == rotation % 360

    clip = reader.read_clip(path, 4, 48)

    assert [marker_corner(frame) for frame in clip] == ["top_left"] * 4
    # Portrait: bars left and right (48 * 64/96 = 32 columns of picture), none above.
    assert clip[:, :, :, :7].max() == 0 and clip[:, :, :, -7:].max() == 0
    assert clip[:, :, :2, 10:38].float().mean() > 10
    assert indices(clip) == expected(12, 4)


def test_variable_frame_rate_is_sampled_by_time_not_by_frame_count(tmp_path):
    # A burst of frames, two long stills, another burst (10 ms apart): evenly spaced
    # frame *indices* would be [1, 4, 7, 10]; evenly spaced *times* land on the stills.
    pts_ms = [0, 10, 20, 30, 40, 400, 800, 810, 820, 830, 840, 850]
    path = make_video(tmp_path / "vfr", pts_ms=pts_ms, fps=100)
    duration = reader.probe(path).duration_s
    assert duration == pytest.approx(0.86, abs=0.011)

    clip = reader.read_clip(path, 4, 32)

    times_ms = target_times(0, duration, 4) * 1000  # about 107, 322, 537, 752
    assert indices(clip) == pick_on_screen(pts_ms, times_ms) == [4, 4, 5, 5]


def test_fewer_frames_than_asked_repeats_the_frame_on_screen(tmp_path):
    path = make_video(tmp_path / "short", frames=5)
    clip = reader.read_clip(path, 12, 32)
    assert clip.shape == (12, 3, 32, 32)
    assert indices(clip) == [0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4, 4] == expected(5, 12)


@pytest.mark.parametrize("num", [1, 7, 30])
def test_same_shape_for_any_number_of_frames(tmp_path, num):
    path = make_video(tmp_path / "v", frames=9)
    clip = reader.read_clip(path, num, 16)
    assert clip.shape == (num, 3, 16, 16)
    assert indices(clip) == expected(9, num)


# --- seeking or decoding straight on ---------------------------------------------------------------


@pytest.fixture
def seeks(monkeypatch):
    calls: list[float] = []
    real = reader._seek

    def spy(path, container, stream, offset):
        calls.append(offset)
        return real(path, container, stream, offset)

    monkeypatch.setattr(reader, "_seek", spy)
    return calls


@pytest.mark.parametrize(
    "codec, options",
    [("libx264", dict(bframes=3)), ("libx265", dict(bframes=3)), ("libvpx-vp9", {}), ("mpeg4", dict(bframes=2)),
     ("mjpeg", {})],
)
def test_seeks_past_keyframes_between_distant_targets_and_still_picks_exactly(tmp_path, seeks, codec, options):
    if codec not in ENCODERS:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    path = make_video(tmp_path / "gop10", codec=codec, frames=120, width=64, height=64, gop=10, **options)
    interval = reader.probe(path).keyframe_interval

    clip = reader.read_clip(path, 4, 32)  # targets 30 frames apart: keyframes in between

    assert [i % 28 for i in expected(120, 4)] == indices(clip)
    if codec == "libvpx-vp9":
        # WebM indexes clusters, not keyframes, and this whole file is one cluster:
        # no keyframe is known ahead, so it decodes straight on.
        assert interval is None and seeks == []
    else:
        assert 1 <= interval <= 10  # mjpeg is all keyframes; the mpeg4 encoder adds some of its own
        # The first target is 15 frames in: with B-frames, half of the 10 frames before its keyframe
        # are dropped unseen anyway, too few to pay a seek; every later target is 30 frames on.
        assert len(seeks) >= (4 if codec == "mjpeg" else 3)


def test_decodes_straight_on_when_no_keyframe_lies_between_targets(tmp_path, seeks):
    path = make_video(tmp_path / "gop250", frames=120, width=48, height=32, gop=250, bframes=3)
    clip = reader.read_clip(path, 4, 32)
    assert seeks == []
    assert [i % 28 for i in expected(120, 4)] == indices(clip)


def test_dense_targets_decode_straight_on_even_with_short_gops(tmp_path, seeks):
    path = make_video(tmp_path / "gop10", frames=60, width=48, height=32, gop=10)
    clip = reader.read_clip(path, 20, 32)  # a target every 3 frames: seeking would not pay
    assert seeks == []
    assert [i % 28 for i in expected(60, 20)] == indices(clip)


def test_skips_decoding_frames_no_target_needs(tmp_path, decoded):
    path = make_video(tmp_path / "b", frames=60, width=48, height=32, gop=250, bframes=3)
    clip = reader.read_clip(path, 3, 32)
    assert [i % 28 for i in expected(60, 3)] == indices(clip)
    assert len(decoded) < 45  # non-reference B-frames between targets were skipped


# --- damaged and unreadable input --------------------------------------------------------------------


@pytest.mark.parametrize("frames, gop, keep", [(24, 4, 0.6), (120, 10, 0.5), (120, 10, 0.8)])
def test_truncated_download_is_sampled_over_what_is_there(tmp_path, frames, gop, keep):
    full = make_video(tmp_path / "full", frames=frames, gop=gop, faststart=True, width=64, height=64)
    cut = truncate(full, tmp_path / "cut.mp4", keep)
    assert reader.probe(cut).frame_count == frames  # the header still promises every frame
    there = len(list(reader.iter_letterboxed_frames(cut, 16)))
    assert 0 < there < frames * keep

    clip = reader.read_clip(cut, 4, 32)  # with 120 frames and GOP 10, it seeks

    assert clip.shape == (4, 3, 32, 32)
    assert indices(clip) == [i % 28 for i in expected(there, 4)]


READ_CUTS = """
import json, sys
from fvc_loaders import reader
for path in sys.argv[1:]:
    try:
        clip = reader.read_clip(path, 8, 16)
    except reader.VideoReadError as error:
        print(json.dumps({"path": path, "error": str(error)}), flush=True)
    else:
        print(json.dumps({"path": path, "shape": list(clip.shape)}), flush=True)
"""

# Far longer than reading six small clips takes on a loaded machine: reaching it means a hang.
HANG_TIMEOUT_S = 180


def test_truncated_file_never_hangs_whatever_the_cut(tmp_path):
    full = make_video(tmp_path / "full", frames=24, gop=4, faststart=True)
    cuts = [truncate(full, tmp_path / f"cut{keep}.mp4", keep) for keep in (0.05, 0.2, 0.35, 0.5, 0.75, 0.95)]
    # In a child process, so a hang (in Python or inside FFmpeg) fails this test instead of blocking the suite.
    child = subprocess.Popen([sys.executable, "-c", READ_CUTS, *map(str, cuts)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        out, err = child.communicate(timeout=HANG_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        out, _ = child.communicate()
        done = [json.loads(line)["path"] for line in out.splitlines()]
        pytest.fail(f"reading {cuts[len(done)]} did not end within {HANG_TIMEOUT_S}s")
    assert child.returncode == 0, err
    outcomes = [json.loads(line) for line in out.splitlines()]
    assert [o["path"] for o in outcomes] == [str(c) for c in cuts]
    for outcome in outcomes:
        if "error" in outcome:
            assert outcome["path"] in outcome["error"] and "\n" not in outcome["error"]
        else:
            assert outcome["shape"] == [8, 3, 16, 16]


def _unreadable(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "notes.mp4").write_text("these are not the frames you are looking for\n" * 50)
    cut_header = truncate(make_video(tmp_path / "whole", frames=24), tmp_path / "cut_header.mp4", 0.5)
    return {
        "missing": (tmp_path / "nope.mp4", "not found"),
        "empty": (tmp_path / "empty.mp4", "empty"),
        "not a video": (tmp_path / "notes.mp4", "not a video"),
        "audio only": (make_audio_only(tmp_path / "voice.m4a"), "no video stream"),
        "cut before the header ends": (cut_header, "not a video"),
    }


@pytest.mark.parametrize("case", ["missing", "empty", "not a video", "audio only", "cut before the header ends"])
@pytest.mark.parametrize("call", ["read_clip", "probe", "iter_letterboxed_frames"])
def test_unreadable_input_is_one_line_naming_file_and_reason(tmp_path, case, call):
    path, reason = _unreadable(tmp_path)[case]
    with pytest.raises(reader.VideoReadError) as caught:
        if call == "read_clip":
            reader.read_clip(path, 4, 32)
        elif call == "probe":
            reader.probe(path)
        else:
            list(reader.iter_letterboxed_frames(path, 32))
    message = str(caught.value)
    assert message.startswith(str(path)) and reason in message and "\n" not in message
    assert isinstance(caught.value, BadVideoError) and isinstance(caught.value, UserError)


# --- probe, every frame, letterbox -----------------------------------------------------------------


def test_probe_describes_the_stream(tmp_path):
    path = make_video(tmp_path / "p", width=80, height=48, frames=36, fps=24, gop=12)
    info = reader.probe(path)
    assert (info.codec, info.width, info.height, info.pix_fmt) == ("h264", 80, 48, "yuv420p")
    assert info.frame_count == 36 and info.fps == pytest.approx(24)
    assert info.duration_s == pytest.approx(1.5, abs=0.05)
    assert info.rotation == 0 and info.keyframe_interval == 12
    assert info.path == str(path)


def test_iter_letterboxed_frames_yields_every_frame_upright(tmp_path):
    path = make_video(tmp_path / "all", width=48, height=80, frames=10, rotation=-90, bframes=2)
    frames = list(reader.iter_letterboxed_frames(path, 40))
    assert [f.shape for f in frames] == [(40, 40, 3)] * 10 and frames[0].dtype == np.uint8
    assert [index_of(f) for f in frames] == list(range(10))
    assert {marker_corner(f) for f in frames} == {"top_left"}


def test_letterbox_of_an_array(tmp_path):
    image = np.full((50, 100, 3), 200, np.uint8)
    boxed = letterbox(image, 64)
    assert boxed.shape == (64, 64, 3) and boxed.dtype == np.uint8
    assert boxed[:16].max() == 0 and boxed[48:].max() == 0 and boxed[16:48].min() > 190
    with pytest.raises(ValueError):
        letterbox(np.zeros((10, 10), np.uint8), 32)


def test_same_frames_as_every_frame_letterboxed(tmp_path):
    # read_clip and iter_letterboxed_frames share one conversion: the sampled frames are copies of those.
    path = make_video(tmp_path / "same", frames=16, bframes=2)
    every = list(reader.iter_letterboxed_frames(path, 32))
    clip = reader.read_clip(path, 4, 32)
    for frame, i in zip(clip, expected(16, 4), strict=True):
        assert np.array_equal(frame.permute(1, 2, 0).numpy(), every[i])


# --- what a seek costs in this file -------------------------------------------------------------------


def test_seeking_pays_only_when_the_frames_it_skips_cost_more_than_the_seek():
    from fvc_loaders.sampling import DecodeCosts, plan_seeks

    targets = [5.5, 15.5, 40.5]  # keyframes at 0, 10, 20, 30, 40: frame units, frame_duration 1
    keyframes = [0.0, 10.0, 40.0]
    plain = DecodeCosts.of(b_frames=False, intra_only=False, threads=3)  # a seek costs 6 decoded frames
    # Seeking to 10 skips 4.5 frames (fewer than 6): decode on; seeking to 40 skips 24.5: seek.
    assert plan_seeks(targets, keyframes, 0.0, 1.0, plain) == [False, False, True]
    # With B-frames, half of the frames passed over are dropped unseen anyway: 12 frames pay no seek.
    b_frames = DecodeCosts.of(b_frames=True, intra_only=False, threads=3)
    assert plan_seeks([5.5, 20.5, 40.5], [0.0, 20.0, 40.0], 0.0, 1.0, b_frames) == [False, True, True]
    assert plan_seeks([5.5, 17.5, 40.5], [0.0, 15.0, 40.0], 0.0, 1.0, b_frames) == [False, False, True]
    # More decoding threads: a longer pipeline to refill after each seek.
    wide = DecodeCosts.of(b_frames=True, intra_only=False, threads=16)
    assert plan_seeks([5.5, 20.5, 60.5], [0.0, 20.0, 60.0], 0.0, 1.0, wide) == [False, False, True]
    # An intra-only stream decodes nothing it passes over, but reading packets adds up: 6 pay a seek.
    mjpeg = DecodeCosts.of(b_frames=False, intra_only=True, threads=3)
    assert plan_seeks([2.5, 5.5, 12.5], [2.0, 5.0, 12.0], 0.0, 1.0, mjpeg) == [False, False, True]
    # No index: never seek.
    assert plan_seeks(targets, [None, None, None], 0.0, 1.0, plain) == [False, False, False]


def test_reader_uses_the_files_b_frames_to_decide(tmp_path, seeks):
    # Targets at frames 12, 36, 60; keyframes at 0, 22, 44, 66: a seek would skip the 10 frames from
    # 12 to 22 and the 8 from 36 to 44. That pays without B-frames (all of them decoded otherwise), not
    # with 3 (about half of them would be decoded).
    common = dict(frames=72, width=48, height=32, gop=22)
    no_b = make_video(tmp_path / "noB", bframes=0, **common)
    with_b = make_video(tmp_path / "B", bframes=3, **common)
    for path, sought in ((no_b, 2), (with_b, 0)):
        seeks.clear()
        clip = reader.read_clip(path, 3, 32)
        assert [i % 28 for i in expected(72, 3)] == indices(clip)
        assert len(seeks) == sought, path.name
