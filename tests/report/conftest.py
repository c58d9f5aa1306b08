"""A tiny real run for the report tests: `fvc run` with the PyAV loader and naive_cnn on 6 real and
6 fake H.264 clips plus one corrupt file (skipped), 2 folds of 2 epochs; built once per session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

FVC = [sys.executable, "-m", "fvc_core.cli"]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}


def fvc(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*FVC, *args], capture_output=True, text=True, env=ENV, timeout=600, cwd=cwd)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    pytest.importorskip("fvc_loaders")
    pytest.importorskip("fvc_naive_cnn")
    from fvc_loaders.synthetic import make_synthetic_dataset

    root = tmp_path_factory.mktemp("report_run")
    table_path = make_synthetic_dataset(root / "videos", videos=6, frames=8, frame_size=32, seed=3)
    table = pl.read_parquet(table_path)
    (root / "videos/fake/broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video")
    table = pl.concat([table, pl.DataFrame({"video_path": ["fake/broken.mp4"], "label": ["fake"],
                                            "source_id": ["src_broken"]})])
    table.write_parquet(root / "videos/with_broken.parquet")
    config = {
        "experiment": "report", "seed": 11, "output_dir": str(root / "out"),
        "data": {"name": "metadata", "metadata": str(root / "videos/with_broken.parquet"),
                 "group_column": "source_id", "num_frames": 4, "size": 32, "on_bad_video": "skip"},
        "model": {"name": "naive_cnn", "chunk_size": 2},
        "trainer": {"name": "supervised", "folds": 2, "epochs": 2, "grad_accum": 2, "warmup_epochs": 1,
                    "num_workers": 0},
        "trackers": ["console"],
    }
    (root / "experiment.yaml").write_text(yaml.safe_dump(config))
    done = fvc("run", str(root / "experiment.yaml"))
    assert done.returncode == 0, done.stdout + done.stderr
    return root / "out/naive_cnn"
