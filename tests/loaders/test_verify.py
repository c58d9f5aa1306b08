"""``fvc verify``: every video decoded up front, the bad ones listed with reasons, in parallel."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from fvc_loaders.config import MetadataConfig
from fvc_loaders.dataset import MetadataDataset
from fvc_loaders.verify import verify_dataset

from fvc_core.cli import main
from tests.loaders.videos import make_audio_only, make_video


@pytest.fixture
def table(tmp_path) -> Path:
    """Two good videos and three bad ones: not a video, audio only, missing."""
    make_video(tmp_path / "real.mp4", frames=6, width=48, height=32)
    make_video(tmp_path / "fake.avi", codec="mjpeg", frames=6, width=48, height=32)
    (tmp_path / "text.mp4").write_text("this is not a video\n" * 20)
    make_audio_only(tmp_path / "audio.m4a")
    path = tmp_path / "metadata.parquet"
    pl.DataFrame({
        "video_path": ["real.mp4", "text.mp4", "fake.avi", "audio.m4a", "gone.mp4"],
        "label": ["real", "fake", "fake", "real", "fake"],
    }).write_parquet(path)
    return path


def test_bad_videos_are_listed_in_table_order_with_reasons(table):
    dataset = MetadataDataset(MetadataConfig(metadata=table, num_frames=3, size=32))
    checked, bad = verify_dataset(dataset, workers=1)
    assert checked == 5
    assert [Path(b.video_path).name for b in bad] == ["text.mp4", "audio.m4a", "gone.mp4"]
    reasons = {Path(b.video_path).name: b.reason for b in bad}
    assert all(reasons.values())
    assert "no video" in reasons["audio.m4a"].lower()
    assert "not found" in reasons["gone.mp4"].lower() or "no such file" in reasons["gone.mp4"].lower()


def test_cli_in_parallel_writes_a_report_and_fails_under_the_fail_policy(table, tmp_path, capsys):
    report = tmp_path / "bad.csv"
    code = main(["verify", str(table), "num_frames=3", "size=32", "-j", "2", "-o", str(report)])
    out = capsys.readouterr().out
    assert code == 2
    assert "3 of 5 videos cannot be read" in out
    assert "on_bad_video is fail" in out
    listed = pl.read_csv(report)
    assert listed.columns == ["video_path", "reason"]
    assert sorted(Path(p).name for p in listed["video_path"]) == ["audio.m4a", "gone.mp4", "text.mp4"]


def test_skip_policy_passes_and_a_clean_table_passes(table, tmp_path, capsys):
    assert main(["verify", str(table), "on_bad_video=skip", "num_frames=2", "size=16", "-j", "1"]) == 0
    assert "a run leaves these videos out" in capsys.readouterr().out

    clean = tmp_path / "clean.parquet"
    pl.read_parquet(table).filter(pl.col("video_path").is_in(["real.mp4", "fake.avi"])).write_parquet(clean)
    assert main(["verify", str(clean), "-j", "1", "-o", str(tmp_path / "none.parquet")]) == 0
    assert "all 2 videos read" in capsys.readouterr().out
    assert pl.read_parquet(tmp_path / "none.parquet").height == 0


def test_verifies_the_data_of_an_experiment_config(table, tmp_path, capsys):
    config = tmp_path / "experiment.yaml"
    config.write_text(f"data:\n  name: metadata\n  metadata: {table}\n  num_frames: 2\n  size: 16\n"
                      "model:\n  name: naive_cnn\n")
    assert main(["verify", str(config), "-j", "1"]) == 2
    assert "3 of 5 videos cannot be read" in capsys.readouterr().out
    assert main(["verify", str(config), "data.on_bad_video=skip", "-j", "1"]) == 0


def test_mistakes_are_one_line(table, tmp_path, capsys):
    assert main(["verify", str(table), "num_frame=3"]) == 2
    assert "data.num_frame: unknown key (did you mean 'num_frames'?)" in capsys.readouterr().err
    assert main(["verify", str(tmp_path / "missing.parquet")]) == 2
    assert "missing.parquet: metadata table not found" in capsys.readouterr().err
