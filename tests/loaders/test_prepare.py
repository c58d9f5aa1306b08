"""``fvc prepare``: letterboxed copies that training reads like the originals; resumable; bad videos per policy."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import torch
from fvc_loaders.config import MetadataConfig
from fvc_loaders.dataset import MetadataDataset
from fvc_loaders.prepare import Encoding, prepare
from fvc_loaders.reader import probe, read_clip

from fvc_core.cli import main
from fvc_core.errors import BadVideoError, UserError
from tests.loaders.videos import LEVEL_STEP, make_video, marker_corner

SMALL = Encoding(size=32)


def central_level(clip: torch.Tensor) -> torch.Tensor:
    """Per frame, the median grey of the middle of the picture (away from padding and marker)."""
    t, _, h, w = clip.shape
    return clip[:, :, h // 3 : h - h // 3, w // 3 : w - w // 3].float().mean(1).reshape(t, -1).median(1).values


@pytest.fixture
def table(tmp_path) -> Path:
    """Three videos of different shapes (one rotated, one AVI) in a table with an extra column."""
    data = tmp_path / "data"
    for folder in ("real", "fake"):
        (data / folder).mkdir(parents=True)
    make_video(data / "real" / "wide.mp4", frames=12, width=96, height=48, fps=12)
    make_video(data / "fake" / "tall.mp4", frames=10, width=48, height=96, rotation=90, corner="bottom_right")
    make_video(data / "fake" / "old.avi", codec="mjpeg", frames=8, width=64, height=64)
    path = data / "metadata.parquet"
    pl.DataFrame({
        "video_path": ["real/wide.mp4", "fake/tall.mp4", "fake/old.avi"],
        "label": ["real", "fake", "fake"],
        "source_id": ["s1", "s1", "s2"],
    }).write_parquet(path)
    return path


def test_copies_are_letterboxed_h264_with_the_same_frames(table, tmp_path):
    out = tmp_path / "stage3"
    result = prepare(table, out, encoding=SMALL, workers=1)

    assert (result.written, result.already_done, result.bad) == (3, 0, [])
    scaled = pl.read_parquet(out / "scaled_metadata.parquet")
    assert scaled.columns == ["video_path", "label", "source_id"]
    assert scaled["video_path"].to_list() == ["real/wide.mp4", "fake/tall.mp4", "fake/old.avi.mp4"]
    assert scaled.drop("video_path").equals(pl.read_parquet(table).drop("video_path"))
    for original, copy in zip(pl.read_parquet(table)["video_path"], scaled["video_path"], strict=True):
        src, dst = probe(table.parent / original), probe(out / copy)
        assert (dst.codec, dst.width, dst.height, dst.pix_fmt, dst.rotation) == ("h264", 32, 32, "yuv420p", 0)
        assert dst.frame_count == src.frame_count
        assert dst.fps == pytest.approx(src.fps)
        # Training samples the same moments from the copy as from the original, upright. Each frame's
        # grey level says which frame it is (LEVEL_STEP apart); a second lossy coding moves it a little.
        a, b = read_clip(table.parent / original, 4, 32), read_clip(out / copy, 4, 32)
        assert (central_level(a) - central_level(b)).abs().max() < LEVEL_STEP / 2
        assert [marker_corner(f) for f in a] == [marker_corner(f) for f in b]
        assert (a.float() - b.float()).abs().mean() < 3

    # The scaled table is an ordinary metadata table.
    dataset = MetadataDataset(MetadataConfig(metadata=out / "scaled_metadata.parquet", group_column="source_id",
                                             num_frames=3, size=32))
    assert dataset.table()["group"].to_list() == ["s1", "s1", "s2"]
    assert dataset.read_video(dataset.table()["video_path"][2]).shape == (3, 3, 32, 32)


def test_a_rerun_skips_finished_copies_and_redoes_half_written_ones(table, tmp_path):
    out = tmp_path / "stage3"
    prepare(table, out, encoding=SMALL, workers=1)
    finished = out / "real" / "wide.mp4"
    stamp = finished.stat().st_mtime_ns

    # An interrupted run leaves only a temporary file, never the final name.
    (out / "fake" / "tall.mp4").unlink()
    (out / "fake" / ".tall.mp4.4242.tmp.mp4").write_bytes(b"half a video")
    result = prepare(table, out, encoding=SMALL, workers=1)

    assert (result.written, result.already_done) == (1, 2)
    assert finished.stat().st_mtime_ns == stamp
    assert probe(out / "fake" / "tall.mp4").frame_count == 10

    with pytest.raises(UserError, match="already holds copies made with .*'size': 32.* not .*'size': 64"):
        prepare(table, out, encoding=Encoding(size=64), workers=1)


def test_bad_videos_fail_or_are_skipped_and_listed(table, tmp_path):
    (table.parent / "fake" / "broken.mp4").write_bytes(b"\x00" * 500)
    pl.read_parquet(table).vstack(pl.DataFrame({"video_path": ["fake/broken.mp4"], "label": ["fake"],
                                                "source_id": ["s3"]})).write_parquet(table)
    out = tmp_path / "stage3"

    with pytest.raises(BadVideoError, match=r"broken\.mp4: .*run again to resume"):
        prepare(table, out, encoding=SMALL, workers=1)
    assert not (out / "scaled_metadata.parquet").exists()
    assert (out / "real" / "wide.mp4").is_file()  # copies made before the failure are kept

    result = prepare(table, out, encoding=SMALL, on_bad_video="skip", workers=1)
    assert result.already_done == 3
    assert [Path(p).name for p, _ in result.bad] == ["broken.mp4"]
    assert pl.read_parquet(out / "scaled_metadata.parquet").height == 3
    listed = pl.read_parquet(out / "bad_videos.parquet")
    assert listed.columns == ["video_path", "reason"] and listed.height == 1


def test_cli_in_parallel(table, tmp_path, capsys):
    out = tmp_path / "stage3"
    assert main(["prepare", str(table), "-o", str(out), "--size", "32", "-j", "2"]) == 0
    assert "3 videos scaled, 0 already done, 0 bad" in capsys.readouterr().out
    assert main(["prepare", str(table), "-o", str(out), "--size", "32", "-j", "2"]) == 0
    assert "0 videos scaled, 3 already done, 0 bad" in capsys.readouterr().out
    clips = [read_clip(out / p, 2, 32) for p in pl.read_parquet(out / "scaled_metadata.parquet")["video_path"]]
    assert all(c.shape == (2, 3, 32, 32) and c.dtype == torch.uint8 for c in clips)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--size", "33"], "--size 33: must be even"),
        (["--video-column", "file"], "no column 'file'"),
        (["--size", "100000"], "--size 100000: at most 4096"),  # was a traceback from FFmpeg's scaler
        (["--crf", "99"], "--crf 99: x264's quality scale is 0 (lossless) to 51"),
        (["--face-align"], "--face-align: only with --faces"),  # was letterboxed copies, silently
        (["--face-frames", "4"], "--face-frames: only with --faces"),
    ],
)
def test_mistakes_are_one_line(table, tmp_path, capsys, args, message):
    assert main(["prepare", str(table), "-o", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_refuses_to_overwrite_the_originals(table, capsys):
    assert main(["prepare", str(table), "-o", str(table.parent), "--size", "32"]) == 2
    assert "would overwrite the originals" in capsys.readouterr().err
