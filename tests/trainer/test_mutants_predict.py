"""`fvc predict` on a run killed while its second fold trains: only the finished fold scores."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

pytest.importorskip("fvc_loaders")
pytest.importorskip("fvc_naive_cnn")

from fvc_loaders.synthetic import make_synthetic_dataset  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}

ROOT = Path(__file__).resolve().parents[2]


def wait_for(path: Path, proc: subprocess.Popen, log: Path, what: str, deadline_s: float = 300) -> None:
    deadline = time.monotonic() + deadline_s
    while not path.exists():
        assert proc.poll() is None, f"{what}: the run ended first\n{log.read_text()}"
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture(scope="module")
def killed_in_fold_1(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict_unfinished")
    table = make_synthetic_dataset(root / "videos", videos=6, frames=8, frame_size=32, seed=4)
    config = {
        "experiment": "unfinished", "seed": 5, "output_dir": str(root / "out"),
        "data": {"name": "metadata", "metadata": str(table), "group_column": "source_id", "num_frames": 4,
                 "size": 32},
        "model": {"name": "naive_cnn", "chunk_size": 2},
        "trainer": {"name": "supervised", "folds": 2, "epochs": 3, "grad_accum": 2, "warmup_epochs": 1,
                    # min_epochs 1: fold 1's first epoch writes the model.pt the mutant would score
                    "num_workers": 0, "early_stopping": {"patience": None, "min_epochs": 1}},
        "trackers": ["console"],
    }
    (root / "experiment.yaml").write_text(yaml.safe_dump(config))
    run_dir = root / "out/naive_cnn"
    # Parked at fold 1's first read after its first checkpoint: a known state, not a time window.
    log = root / "run.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tests.gated_fvc", str(run_dir / "fold_1/last.pt"),
                                 str(root / "parked"), "run", str(root / "experiment.yaml")],
                                cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(root / "parked", proc, log, "fold 1 never checkpointed an epoch")
    finally:
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
