"""trainer.aggregation: topk when a clip has no more frames than top_k (issue 37: every test had T > k).
The top k of T <= k frames are all of them: the score is the mean of every frame's fake probability.
Checked against numpy on the frame logits of the real naive_cnn, and on a real `fvc run` of one frame
per clip, whose predictions must equal numpy's top-k from the fold's own model."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
import torch
import yaml

pytest.importorskip("fvc_loaders")
pytest.importorskip("fvc_naive_cnn")

from fvc_loaders.config import MetadataConfig  # noqa: E402
from fvc_loaders.dataset import MetadataDataset  # noqa: E402
from fvc_naive_cnn.model import NaiveCNNBaseline  # noqa: E402

from fvc_core.training import load_fold_model  # noqa: E402
from fvc_core.training.scoring import Aggregation  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]
TOP_K = 3


def numpy_topk(frame_logits: np.ndarray, k: int) -> np.ndarray:
    """Mean of the k largest fake probabilities of each row (all of them when a row has fewer)."""
    z = frame_logits - frame_logits.max(-1, keepdims=True)
    fake = np.exp(z[..., 1]) / np.exp(z).sum(-1)  # softmax, class 1
    largest = -np.sort(-fake, axis=-1)[..., :k]
    return largest.mean(-1)


@pytest.mark.parametrize("frames", [1, 2, 3, 5])
def test_topk_of_naive_cnn_frames_equals_numpy_also_when_a_clip_has_no_more_than_k(frames):
    torch.manual_seed(0)
    model = NaiveCNNBaseline(chunk_size=2, layout="ntchw").eval()
    clips = torch.randint(0, 255, (4, frames, 3, 16, 16), dtype=torch.uint8)
    with torch.no_grad():
        _, scores, frame_scores = Aggregation("topk", TOP_K).score(model, clips)
        logits = model.frame_logits(clips).double().numpy()
    want = numpy_topk(logits, TOP_K)
    assert np.isfinite(scores.numpy()).all()
    np.testing.assert_allclose(scores.numpy(), want, rtol=0, atol=1e-6)
    if frames <= TOP_K:  # every frame counts: the mean of them all
        np.testing.assert_allclose(scores.numpy(), frame_scores.numpy().mean(1), rtol=0, atol=1e-6)

    # Windows (N, K, T, ...): each window's top k, then their mean.
    windows = clips.reshape(2, 2, frames, 3, 16, 16)
    with torch.no_grad():
        _, window_scores, _ = Aggregation("topk", TOP_K).score(model, windows)
    np.testing.assert_allclose(window_scores.numpy(), want.reshape(2, 2).mean(1), rtol=0, atol=1e-6)


def test_a_run_of_one_frame_per_clip_predicts_numpys_topk_of_its_own_model(tmp_path):
    config = {
        "experiment": "one_frame", "seed": 0, "output_dir": str(tmp_path / "runs"),
        "data": {"name": "synthetic", "root": str(tmp_path / "data"), "videos": 6, "frames": 4,
                 "frame_size": 32, "num_frames": 1, "size": 16},
        "model": {"name": "naive_cnn", "chunk_size": 4},
        "trainer": {"name": "supervised", "folds": 2, "epochs": 1, "warmup_epochs": 0,
                    "aggregation": "topk", "top_k": TOP_K},
        "trackers": [],
    }
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(config))
    done = subprocess.run([*FVC, "run", str(tmp_path / "exp.yaml")], capture_output=True, text=True,
                          env={**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr

    data = MetadataDataset(MetadataConfig(metadata=tmp_path / "data/metadata.parquet", num_frames=1, size=16))
    for fold in (0, 1):
        fold_dir = tmp_path / "runs/naive_cnn" / f"fold_{fold}"
        predictions = pl.read_parquet(fold_dir / "predictions.parquet")
        model = load_fold_model(fold_dir)
        clips = torch.stack([data.read_video(p) for p in predictions["video_path"]])
        assert clips.shape[1] == 1
        with torch.no_grad():
            logits = model.frame_logits(clips).double().numpy()
        np.testing.assert_allclose(predictions["score"].to_numpy(), numpy_topk(logits, TOP_K), rtol=0, atol=1e-5)
