"""`fvc run` with the real plugins (PyAV loader, naive_cnn) on small encoded videos, then `fvc predict`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("fvc_loaders")
pytest.importorskip("fvc_naive_cnn")

from fvc_core.cli import main  # noqa: E402
from fvc_core.training import load_fold_model, score_videos  # noqa: E402
from tests.builders import fvc, tiny_experiment, tiny_videos, with_a_broken_video  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A 2-fold naive_cnn run on 6 real + 6 fake H.264 clips plus one corrupt file (skipped)."""
    root = tmp_path_factory.mktemp("e2e")
    videos = with_a_broken_video(tiny_videos(root / "videos", seed=3))
    experiment = tiny_experiment(root, videos, experiment="e2e", seed=11, data={"on_bad_video": "skip"},
                                 trainer={"epochs": 2, "num_workers": 1})
    done = fvc("run", str(experiment))
    assert done.returncode == 0, done.stdout + done.stderr
    return root, root / "out/naive_cnn", done.stdout


def test_run_writes_every_output(finished_run):
    root, run_dir, stdout = finished_run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert [f["fold"] for f in summary["folds"]] == [0, 1]
    assert set(summary["mean"]) >= {"accuracy", "precision", "recall", "f1_score", "roc_auc", "eer"}
    skipped = json.loads((run_dir / "skipped_videos.json").read_text())
    assert [Path(s["video_path"]).name for s in skipped] == ["broken.mp4"]
    assert "1 video(s) skipped" in stdout and "mean ± std" in stdout
    for fold in (0, 1):
        fold_dir = run_dir / f"fold_{fold}"
        assert {p.name for p in fold_dir.iterdir()} >= {"model.pt", "metrics.json", "predictions.parquet",
                                                        "history.json", "split.parquet"}
        metrics = json.loads((fold_dir / "metrics.json").read_text())
        assert metrics["n"] == pl.read_parquet(fold_dir / "predictions.parquet").height


def test_a_second_fvc_run_keeps_the_finished_folds(finished_run):
    root, run_dir, _ = finished_run
    before = [(run_dir / f"fold_{k}/metrics.json").read_text() for k in (0, 1)]
    again = subprocess.run([*FVC, "run", str(root / "experiment.yaml")], capture_output=True, text=True,
                           env={**os.environ, "CI": "1"}, timeout=300)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("finished earlier, kept") == 2
    assert [(run_dir / f"fold_{k}/metrics.json").read_text() for k in (0, 1)] == before


def test_fold_model_scores_its_test_videos_as_in_training(finished_run):
    _, run_dir, _ = finished_run
    model = load_fold_model(run_dir / "fold_0")
    assert type(model).__name__ == "NaiveCNNBaseline" and not model.training
    preds = pl.read_parquet(run_dir / "fold_0/predictions.parquet")
    scores = score_videos(run_dir, preds["video_path"].to_list())
    assert scores["video_path"].to_list() == preds["video_path"].to_list()
    np.testing.assert_allclose(scores["score_fold_0"].to_numpy(), preds["score"].to_numpy(), rtol=1e-5, atol=1e-6)
    mean = (scores["score_fold_0"] + scores["score_fold_1"]) / 2
    np.testing.assert_allclose(scores["score"].to_numpy(), mean.to_numpy())


def test_fvc_predict_on_a_folder(finished_run, tmp_path, capsys):
    root, run_dir, _ = finished_run
    out = tmp_path / "scores.csv"
    done = subprocess.run([*FVC, "predict", str(run_dir), str(root / "videos/real"), "-o", str(out)],
                          capture_output=True, text=True, env={**os.environ, "CI": "1", "COLUMNS": "250"}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    frame = pl.read_csv(out)
    assert frame.height == 6 and set(frame["prediction"]) <= {"real", "fake"}
    assert "src_0000.mp4" in done.stdout
    assert main(["predict", str(run_dir), str(tmp_path / "missing.mp4")]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing.mp4'}: no such video file or folder"


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "naive_cnn"
    shutil.copytree(run_dir, copy)
    return copy


def test_predict_refuses_a_finished_fold_without_its_model(finished_run, tmp_path, capsys):
    root, run_dir, _ = finished_run
    run = copy_of(run_dir, tmp_path)
    (run / "fold_1/model.pt").unlink()
    # Scoring with fold 0 alone would change the mean without a word.
    assert main(["predict", str(run), str(root / "videos/real")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {run / 'fold_1/model.pt'}: missing, though fold 1 finished") and "\n" not in err


def test_predict_uses_only_finished_folds(finished_run, tmp_path):
    root, run_dir, _ = finished_run
    run = copy_of(run_dir, tmp_path)
    # Fold 1 as while it trains: a model.pt of its best epoch so far, no metrics.json yet.
    (run / "fold_1/metrics.json").unlink()
    videos = sorted(str(p) for p in (root / "videos/real").glob("*.mp4"))[:2]
    scores = score_videos(run, videos)
    assert [c for c in scores.columns if c.startswith("score_fold_")] == ["score_fold_0"]
    np.testing.assert_allclose(scores["score"].to_numpy(), scores["score_fold_0"].to_numpy())


def test_predict_refuses_a_model_of_another_config(finished_run, tmp_path, capsys):
    import torch

    from fvc_core.training.checkpoint import save_atomic

    root, run_dir, _ = finished_run
    run = copy_of(run_dir, tmp_path)
    state = torch.load(run / "fold_0/model.pt", weights_only=True)
    state["config"]["data"]["size"] = 64
    state["config"]["model"]["norm_stats"] = "running"
    save_atomic(state, run / "fold_0/model.pt")  # a well-formed checkpoint, checksum included
    assert main(["predict", str(run), str(root / "videos/real")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {run / 'fold_0/model.pt'}: trained under another config than {run / 'config.yaml'} "
                   "(differs in data.size, model.norm_stats); not this run's model")


def test_predict_refuses_a_damaged_model(finished_run, tmp_path, capsys):
    root, run_dir, _ = finished_run
    run = copy_of(run_dir, tmp_path)
    data = bytearray((run / "fold_1/model.pt").read_bytes())
    middle = len(data) // 2
    data[middle - 20_000:middle + 20_000] = bytes(40_000)
    (run / "fold_1/model.pt").write_bytes(bytes(data))
    assert main(["predict", str(run), str(root / "videos/real")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {run / 'fold_1/model.pt'}: corrupt (checksum mismatch") and "\n" not in err


def test_predict_reads_the_folds_of_repeated_cross_validation(finished_run, tmp_path):
    import shutil

    root, run_dir, _ = finished_run
    plain = score_videos(run_dir, sorted(str(p) for p in (root / "videos/real").glob("*.mp4"))[:2])
    run = copy_of(run_dir, tmp_path)
    # trainer.repeats > 1 lays folds out as repeat_<r>/fold_<k>, numbered across the run in metrics.json:
    # both folds here are a fold_0 of their repeat, and must stay two folds, not one scored twice.
    for r, fold in ((0, "fold_0"), (1, "fold_1")):
        (run / f"repeat_{r}").mkdir()
        shutil.move(run / fold, run / f"repeat_{r}" / "fold_0")
    scores = score_videos(run, sorted(str(p) for p in (root / "videos/real").glob("*.mp4"))[:2])
    assert [c for c in scores.columns if c.startswith("score_fold_")] == ["score_fold_0", "score_fold_1"]
    for column in ("score", "score_fold_0", "score_fold_1"):
        np.testing.assert_array_equal(scores[column].to_numpy(), plain[column].to_numpy())
