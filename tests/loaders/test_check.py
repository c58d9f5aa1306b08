"""`fvc check` tells what the dataset can tell without decoding: the table, its columns, its labels,
that its videos exist (issue 24: it used to say "valid" for a table that did not exist)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from fvc_core.cli import main

from .videos import make_video

CONFIG = """
output_dir: runs
data: {{name: metadata, metadata: {table}, on_bad_video: {policy}, num_frames: 2, size: 32}}
model: {{name: naive_cnn}}
trackers: []
"""


def check(tmp_path: Path, capsys, table: str = "videos.parquet", policy: str = "fail") -> tuple[int, str, str]:
    path = tmp_path / "exp.yaml"
    path.write_text(CONFIG.format(table=table, policy=policy))
    code = main(["check", str(path)])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def videos(tmp_path) -> list[str]:
    return [str(make_video(tmp_path / f"v{i}.mp4", frames=2, width=32, height=32)) for i in range(2)]


def test_a_missing_table_is_an_error(tmp_path, capsys):
    code, out, err = check(tmp_path, capsys)
    assert code == 2 and "valid" not in out
    assert err == f"error: {tmp_path / 'videos.parquet'}: metadata table not found\n"


def test_a_missing_column_and_an_unknown_label_are_errors(tmp_path, capsys, videos):
    pl.DataFrame({"path": videos, "label": ["real", "fake"]}).write_parquet(tmp_path / "videos.parquet")
    code, _, err = check(tmp_path, capsys)
    assert code == 2 and "no column 'video_path' (columns: path, label; data.video_column names another)" in err
    pl.DataFrame({"video_path": videos, "label": ["real", "synthetic"]}).write_parquet(tmp_path / "videos.parquet")
    code, _, err = check(tmp_path, capsys)
    assert code == 2 and "column 'label' has unknown labels 'synthetic'" in err


def test_videos_that_do_not_exist_fail_or_are_noted_by_the_policy(tmp_path, capsys, videos):
    gone = str(tmp_path / "gone.mp4")
    pl.DataFrame({"video_path": [*videos, gone], "label": [0, 1, 1]}).write_parquet(tmp_path / "videos.parquet")
    code, out, err = check(tmp_path, capsys)
    assert code == 2 and "valid" not in out
    assert f"1 of 3 videos listed do not exist: {gone!r}" in err and err.count("\n") == 1
    code, out, err = check(tmp_path, capsys, policy="skip")
    assert code == 0 and err == ""
    assert f"# note: {tmp_path / 'videos.parquet'}: 1 of 3 videos listed do not exist: {gone!r}" in out
    assert ": valid (config hash" in out


def test_a_good_table_is_valid(tmp_path, capsys, videos):
    pl.DataFrame({"video_path": videos, "label": [0, 1]}).write_parquet(tmp_path / "videos.parquet")
    code, out, err = check(tmp_path, capsys)
    assert (code, err) == (0, "") and "# note" not in out and ": valid (config hash" in out
