"""Fractional frame rates, end to end (issue 37: every test video and requested fps was whole): videos at
30000/1001 and 25 fps, windows at fps 12.5, 29.97 and the video's own 29.97... rate, and the uniform
sampler. The frames picked must equal an exact computation (Fractions, no float) from the timestamps the
file really holds, by the documented rule (sampling.py): a target's frame is the last one shown at or
before it. The videos are 40 s long, so a rate rounded anywhere (29.97 to 30, 12.5 to 12) drifts by a
frame or more and shows."""

from __future__ import annotations

from bisect import bisect_right
from fractions import Fraction

import av
import pytest

from tests.loaders.videos import MAX_INDEXED_FRAMES, index_of, make_video

reader = pytest.importorskip("fvc_loaders.reader")

HALF = Fraction(1, 2)
NTSC = Fraction(30000, 1001)


pytestmark = pytest.mark.usefixtures("two_core_decoder")


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rates")
    return {
        "ntsc": make_video(folder / "ntsc.mp4", frames=1200, fps=NTSC, width=48, height=32, gop=60),
        "pal": make_video(folder / "pal.mp4", frames=1000, fps=25, width=48, height=32, gop=50),
    }


def real_timestamps(path) -> tuple[list[Fraction], Fraction, Fraction]:
    """Every frame's presentation time (seconds, exact) as the file holds it, when the last one ends, and
    the stream's time base (the resolution of those times)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = sorted(p.pts for p in container.demux(stream) if p.pts is not None)
        tb = Fraction(stream.time_base)
    times = [Fraction(p) * tb for p in pts]
    return times, times[-1] + (times[-1] - times[-2]), tb


def window_targets(times: list[Fraction], end: Fraction, clip_len: int, fps: Fraction | None,
                   count: int) -> list[list[Fraction]]:
    start, duration = times[0], end - times[0]
    period = 1 / (fps if fps is not None else len(times) / duration)  # unset: the file's own average rate
    span = clip_len * period
    windows = []
    for j in range(count):
        centre = start + (j + HALF) * duration / count
        s = min(max(centre - span / 2, start), start + max(duration - span, 0))
        windows.append([max(min(s + (i + HALF) * period, end - period / 2), s) for i in range(clip_len)])
    return windows


def uniform_targets(times: list[Fraction], end: Fraction, num_frames: int) -> list[Fraction]:
    return [times[0] + (k + HALF) * (end - times[0]) / num_frames for k in range(num_frames)]


def on_screen(times: list[Fraction], t: Fraction) -> int:
    return max(bisect_right(times, t) - 1, 0)


def assert_frames_on_screen(shown: list[int], targets: list[Fraction], times: list[Fraction], tb: Fraction):
    """Each frame shown (its drawn index, which wraps) is the one on screen at its target."""
    wrong, ambiguous = [], 0
    for k, (got, t) in enumerate(zip(shown, targets, strict=True)):
        right = {on_screen(times, t) % MAX_INDEXED_FRAMES, on_screen(times, t + tb / 2) % MAX_INDEXED_FRAMES}
        ambiguous += len(right) > 1
        if got not in right:
            wrong.append((k, float(t), got, sorted(right)))
    assert not wrong, f"(target, time s, frame shown, frames on screen): {wrong[:10]}"
    assert ambiguous <= max(1, len(targets) // 50)  # the check is exact almost everywhere


def test_the_files_hold_the_rates_asked_for(videos):
    for name, rate in (("ntsc", NTSC), ("pal", Fraction(25))):
        times, _, _ = real_timestamps(videos[name])
        assert {b - a for a, b in zip(times[:-1], times[1:], strict=True)} == {1 / rate}


@pytest.mark.parametrize("video, fps, clip_len, count", [
    ("ntsc", None, 1150, 1),             # the video's own 29.97002997... fps, a 38 s window
    ("ntsc", Fraction("29.97"), 1150, 1),
    ("ntsc", Fraction("12.5"), 24, 3),
    ("pal", Fraction("12.5"), 24, 3),    # every other frame
    ("pal", Fraction("12.5"), 400, 1),   # a 32 s window
    ("pal", NTSC, 600, 1),               # more frames than the video has per second: some repeated
])
def test_windows_at_fractional_rates_pick_the_frames_the_timestamps_give(videos, video, fps, clip_len, count):
    clips = reader.read_windows(videos[video], clip_len, 16, fps=None if fps is None else float(fps), count=count)
    times, end, tb = real_timestamps(videos[video])
    for clip, targets in zip(clips, window_targets(times, end, clip_len, fps, count), strict=True):
        assert_frames_on_screen([index_of(f) for f in clip], targets, times, tb)


@pytest.mark.parametrize("video", ["ntsc", "pal"])
def test_uniform_sampling_of_fractional_rates_picks_the_frames_the_timestamps_give(videos, video):
    clip = reader.read_clip(videos[video], 50, 16)
    times, end, tb = real_timestamps(videos[video])
    assert_frames_on_screen([index_of(f) for f in clip], uniform_targets(times, end, 50), times, tb)


@pytest.mark.parametrize("video", ["ntsc", "pal"])
def test_data_fps_12_5_reaches_the_windows_unrounded(videos, video, tmp_path):
    """The same through the dataset plugin, as `data: {sampler: window, fps: 12.5}` configures it."""
    import polars as pl
    from fvc_loaders.config import MetadataConfig
    from fvc_loaders.dataset import MetadataDataset

    table = tmp_path / "m.parquet"
    pl.DataFrame({"video_path": [str(videos[video]), "other.mp4"], "label": [0, 1]}).write_parquet(table)
    data = MetadataDataset(MetadataConfig(metadata=table, sampler="window", clip_len=40, fps=12.5,
                                          clips_per_video=2, size=16))
    clips = data.read_video(str(videos[video]))
    times, end, tb = real_timestamps(videos[video])
    for clip, targets in zip(clips, window_targets(times, end, 40, Fraction("12.5"), 2), strict=True):
        assert_frames_on_screen([index_of(f) for f in clip], targets, times, tb)
