"""The clip cache under a real `fvc run` (issue 37, item 4): entries overwritten with black pixels of the
same shape used to be served, so the run trained and was tested on black clips (exit 0, a fold AUC of
0.5). Now each damaged entry is one warning line naming it, decoded again and rewritten, and the run's
predictions are those of the run that made the cache."""

from __future__ import annotations

import os
import subprocess
import sys

import polars as pl
import pytest
import torch
import yaml

pytest.importorskip("fvc_loaders")
pytest.importorskip("fvc_naive_cnn")

from fvc_loaders.config import MetadataConfig  # noqa: E402
from fvc_loaders.dataset import MetadataDataset  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]
CLIP_BYTES = 4 * 3 * 16 * 16  # num_frames x RGB x size x size, uint8


def test_entries_blacked_out_are_decoded_again_and_the_run_predicts_as_before(tmp_path):
    config = {
        "experiment": "cached", "seed": 0, "output_dir": str(tmp_path / "runs"),
        "data": {"name": "synthetic", "root": str(tmp_path / "data"), "videos": 6, "frames": 4,
                 "frame_size": 32, "num_frames": 4, "size": 16, "cache": str(tmp_path / "cache")},
        "model": {"name": "naive_cnn", "chunk_size": 4},
        "trainer": {"name": "supervised", "folds": 2, "epochs": 1, "warmup_epochs": 0},
        "trackers": [],
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}

    def fvc_run(*args: str) -> subprocess.CompletedProcess:
        done = subprocess.run([*FVC, "run", str(tmp_path / "exp.yaml"), *args], capture_output=True, text=True,
                              env=env, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    def predictions() -> list[pl.DataFrame]:
        return [pl.read_parquet(tmp_path / f"runs/naive_cnn/fold_{k}/predictions.parquet") for k in (0, 1)]

    fvc_run()
    before = predictions()
    entries = sorted((tmp_path / "cache/clips").rglob("*.clip"))
    assert len(entries) == 12  # 6 real + 6 fake videos, one clip each
    for entry in entries:  # every pixel black, the file's length and headers as they were
        data = bytearray(entry.read_bytes())
        data[-CLIP_BYTES:] = bytes(CLIP_BYTES)
        entry.write_bytes(bytes(data))

    done = fvc_run("--fresh")
    warned = [line for line in (done.stdout + done.stderr).splitlines() if "damaged cache entry" in line]
    assert sorted(line.split(": damaged cache entry")[0].split()[-1] for line in warned) == [str(e) for e in entries]
    for old, new in zip(before, predictions(), strict=True):
        assert old.equals(new)  # same videos, labels and scores: trained and tested on the real clips

    # Repaired: each entry now holds the clip decoding gives.
    cached = MetadataDataset(MetadataConfig(metadata=tmp_path / "data/metadata.parquet", num_frames=4, size=16,
                                            cache=tmp_path / "cache"))
    plain = MetadataDataset(MetadataConfig(metadata=tmp_path / "data/metadata.parquet", num_frames=4, size=16))
    for video in before[0]["video_path"].to_list() + before[1]["video_path"].to_list():
        assert torch.equal(cached.read_video(video), plain.read_video(video))
    assert sorted((tmp_path / "cache/clips").rglob("*.clip")) == entries
