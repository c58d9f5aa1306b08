"""`fvc predict` on a run killed while its second fold trains: only the finished fold scores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import polars as pl
import pytest

pytest.importorskip("fvc_loaders")
pytest.importorskip("fvc_naive_cnn")

from tests.builders import start_parked, tiny_experiment, tiny_videos  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def killed_in_fold_1(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict_unfinished")
    # min_epochs 1: fold 1's first epoch writes the model.pt the mutant would score
    tiny_experiment(root, tiny_videos(root / "videos", seed=4), experiment="unfinished", seed=5,
                    trainer={"epochs": 3, "early_stopping": {"patience": None, "min_epochs": 1}})
    run_dir = root / "out/naive_cnn"
    # Parked at fold 1's first read after its first checkpoint: a known state, not a time window.
    proc = start_parked(run_dir / "fold_1/last.pt", root / "parked", root / "run.log", "run",
                        str(root / "experiment.yaml"), env=ENV, what="fold 1 never checkpointed an epoch")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return root, run_dir


def test_fvc_predict_leaves_out_a_fold_that_is_still_training(killed_in_fold_1, tmp_path):
    root, run_dir = killed_in_fold_1
    # Fold 1 has a model.pt of its best epoch so far, but never finished.
    assert (run_dir / "fold_0/metrics.json").exists() and (run_dir / "fold_1/model.pt").exists()
    assert not (run_dir / "fold_1/metrics.json").exists()

    out = tmp_path / "scores.csv"
    done = subprocess.run([*FVC, "predict", str(run_dir), str(root / "videos/fake"), "-o", str(out)],
                          capture_output=True, text=True, env=ENV, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    scores = pl.read_csv(out)
    assert scores.height == 6
    assert [c for c in scores.columns if c.startswith("score_fold_")] == ["score_fold_0"]
    assert scores["score"].to_list() == scores["score_fold_0"].to_list()
    assert "over 1 fold model(s)" in done.stdout
