"""Tiny real videos (PyAV, tests/naive_cnn/videos.py) and the experiment that trains a timm model on them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

from tests.naive_cnn import videos

pytest.importorskip("fvc_timm")

SIZE = 32  # frames of 32 x 32: a 2 x 2 grid of 16-pixel patches for a ViT, five stride-2 stages for a CNN
FRAMES = 4


@pytest.fixture(scope="session")
def video_table(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight H.264 videos (4 real, 4 fake with a pasted patch), 4 frames of 32 x 32, and their table."""
    folder = tmp_path_factory.mktemp("timm_videos")
    items = videos.write_dataset(folder, 8, frames=FRAMES, size=SIZE, seed=3)
    table = folder / "metadata.parquet"
    pl.DataFrame({"video_path": [str(p) for p, _ in items],
                  "label": [label for _, label in items]}).write_parquet(table)
    return table


def experiment(tmp_path: Path, table: Path, model: dict[str, Any], **trainer: Any) -> Path:
    """An experiment file: 2 folds, 1 epoch, batch 2, the model given; returns its path."""
    config = {
        "output_dir": "runs",
        "data": {"name": "metadata", "metadata": str(table), "num_frames": FRAMES, "size": SIZE},
        "model": model,
        "trainer": {"name": "supervised", "folds": 2, "epochs": 1, "warmup_epochs": 0, "num_workers": 0,
                    "batch_size": 2, "grad_accum": 1, "amp": "off", **trainer},
        "trackers": [],
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(config))
    return path
