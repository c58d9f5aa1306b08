"""`fvc evaluate` scores with fvc's own numbers whatever columns the table carries, and says which folds
it used when some never finished (as `fvc predict` and `fvc report` do), through the real command line.

Every expected number is computed here, with scikit-learn, from the per-video scores fvc's models give
(``score_videos``), never read back from what ``fvc evaluate`` wrote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("fvc_loaders")
pytest.importorskip("fvc_naive_cnn")

from sklearn.metrics import accuracy_score, recall_score, roc_auc_score  # noqa: E402

from fvc_core.cli import main  # noqa: E402
from fvc_core.training.predict import score_videos  # noqa: E402
from tests.builders import start_parked, tiny_experiment, tiny_videos  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
ROOT = Path(__file__).resolve().parents[2]
THRESHOLD = 0.5


def experiment(root: Path, table: Path, output_dir: Path) -> Path:
    return tiny_experiment(root, table, file=f"{output_dir.name}.yaml", experiment="trust", seed=5,
                           output_dir=str(output_dir), data={"num_frames": 2},
                           trainer={"grad_accum": 1, "warmup_epochs": 0, "threshold": THRESHOLD})


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """A finished 2-fold run, the table of its videos with absolute paths, and fvc's own scores of them."""
    root = tmp_path_factory.mktemp("trust")
    table = tiny_videos(root / "videos", frames=4, seed=4)
    assert main(["run", str(experiment(root, table, root / "finished"))]) == 0
    plain = pl.read_parquet(table).with_columns(
        pl.col("video_path").map_elements(lambda p: str((table.parent / p).resolve()), return_dtype=pl.String))
    run = root / "finished/naive_cnn"
    direct = score_videos(run, plain["video_path"].to_list(), frames=True)
    return {"root": root, "table": table, "plain": plain, "run": run,
            "direct": plain.select("video_path", (pl.col("label") == "fake").cast(pl.Int64).alias("label"))
            .join(direct, on="video_path")}


def fvc(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*FVC, *args], capture_output=True, text=True, env=ENV, cwd=ROOT, timeout=300)


def independent_metrics(labels: list[int], scores: list[float]) -> dict[str, float]:
    predicted = [int(s >= THRESHOLD) for s in scores]
    return {"roc_auc": roc_auc_score(labels, scores), "recall": recall_score(labels, predicted, zero_division=0),
            "accuracy": accuracy_score(labels, predicted)}


def check_block(block: dict, labels: list[int], scores: list[float]) -> None:
    for name, value in independent_metrics(labels, scores).items():
        assert block[name] == pytest.approx(value), name


# A table that carries columns under the names of fvc's own: the output of an earlier `fvc predict -o`
# (another model's scores, here the opposite of the truth) or anything a user named so.
HOSTILE = {
    "predict_output": lambda label: {"score": pl.when(label == "fake").then(0.01).otherwise(0.99),
                                     "prediction": pl.lit("fake"), "score_fold_0": pl.lit(0.99),
                                     "score_fold_1": pl.lit(0.99), "error": pl.lit(None, dtype=pl.String)},
    "reserved_names": lambda label: {"error": pl.lit("my own note"), "frame_scores": pl.lit(0.5),
                                     "frame_scores_fold_0": pl.lit("x"), "table_score": pl.lit(1.0),
                                     "method": pl.lit("m1")},
}


def test_metrics_are_those_of_fvcs_scores_whatever_columns_the_table_carries(world, tmp_path):
    run, direct = world["run"], world["direct"]
    tables = {kind: world["plain"].with_columns(**columns(pl.col("label"))) for kind, columns in HOSTILE.items()}
    for kind, table in tables.items():
        table.write_parquet(tmp_path / f"{kind}.parquet")
    done = fvc("evaluate", str(run), *(a for kind in tables for a in ("--table", f"{kind}={tmp_path / kind}.parquet")))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # a finished run: nothing to warn about

    ours = direct.sort("video_path")
    labels = ours["label"].to_list()
    for kind, table in tables.items():
        metrics = json.loads((run / "eval" / kind / "metrics.json").read_text())
        mine = pl.read_parquet(run / "eval" / kind / "predictions.parquet").sort("video_path")
        assert mine.height == direct.height and mine["error"].null_count() == mine.height
        for col in ("score", "score_fold_0", "score_fold_1"):
            assert mine[col].to_list() == pytest.approx(ours[col].to_list(), abs=1e-6), (kind, col)
        overall = metrics["overall"]
        check_block(overall["fold_mean_score"], labels, ours["score"].to_list())
        for k in (0, 1):
            check_block(overall["folds"][str(k)], labels, ours[f"score_fold_{k}"].to_list())
        frame_labels = np.repeat(labels, ours["frame_scores"].list.len().to_numpy())
        assert overall["fold_mean_score"]["frame_roc_auc"] == pytest.approx(
            roc_auc_score(frame_labels, np.concatenate(ours["frame_scores"].to_list())))
        assert [f for f in mine.columns if f.startswith("frame_scores")] == [
            "frame_scores", "frame_scores_fold_0", "frame_scores_fold_1"]
        # Every column of the table travels through, as it was, under the table_ prefix.
        for col in table.columns:
            assert mine[f"table_{col}"].to_list() == table.sort("video_path")[col].to_list(), (kind, col)


@pytest.fixture(scope="module")
def killed(world) -> Path:
    """The same experiment killed (SIGKILL) once fold 0 has finished: fold 1 never writes metrics.json."""
    root = world["root"]
    output_dir = root / "killed"
    config = experiment(root, world["table"], output_dir)
    run_dir = output_dir / "naive_cnn"
    # Parked at the first video read after fold 0's metrics.json: fold 1's first read, a known state.
    proc = start_parked(run_dir / "fold_0/metrics.json", root / "parked", root / "killed.log", "run", str(config),
                        env=ENV, what="fold 0 never finished")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (run_dir / "fold_0/metrics.json").exists() and not (run_dir / "fold_1/metrics.json").exists()
    return run_dir


def one_warning(stderr: str, run_dir: Path) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: ") and str(run_dir) in lines[0], stderr
    return lines[0]


def test_a_run_missing_a_fold_is_scored_with_what_finished_and_every_command_says_which(world, killed, tmp_path,
                                                                                           capsys):
    run, table = killed, world["plain"]
    table.write_parquet(tmp_path / "videos.parquet")
    done = fvc("evaluate", str(run), str(tmp_path / "videos.parquet"), "--name", "partial")
    assert done.returncode == 0, done.stdout + done.stderr
    line = one_warning(done.stderr, run)
    assert "1 of 2 fold models (fold 0)" in line and "fold 1 not finished" in line
    assert "[1 of 2 folds]" in done.stdout  # the matrix's cell says it too

    metrics = json.loads((run / "eval/partial/metrics.json").read_text())
    protocol = metrics["protocol"]
    assert (protocol["folds"], protocol["folds_expected"], protocol["folds_missing"]) == ([0], 2, [1])
    assert list(metrics["overall"]["folds"]) == ["0"]
    path = run / "eval/partial/predictions.parquet"
    predictions = pl.read_parquet(path).sort("video_path")
    assert [c for c in predictions.columns if c.startswith("score")] == ["score", "score_fold_0"]
    recorded = pl.read_parquet_metadata(path)
    assert (json.loads(recorded["fvc_folds"]), json.loads(recorded["fvc_folds_missing"])) == ([0], [1])
    # The numbers are those of fold 0's model alone, computed here.
    direct = score_videos(run, predictions["video_path"].to_list()).sort("video_path")
    assert direct.columns[:4] == ["video_path", "score", "prediction", "score_fold_0"]
    assert predictions["score"].to_list() == pytest.approx(direct["score_fold_0"].to_list(), abs=1e-6)
    check_block(metrics["overall"]["fold_mean_score"], predictions["label"].to_list(), direct["score"].to_list())

    # fvc predict and fvc report say the same in one line (their command lines, in this process).
    capsys.readouterr()
    assert main(["predict", str(run), str(world["table"].parent / "fake")]) == 0
    line = one_warning(capsys.readouterr().err, run)
    assert "1 of 2 fold models (fold 0)" in line and "fold 1 not finished" in line
    assert main(["report", str(run), "--no-samples", "-o", str(tmp_path / "report.html")]) == 0
    line = one_warning(capsys.readouterr().err, run)
    assert "partial run" in line and "1 of 2 folds finished (fold 0)" in line and "fold 1 not finished" in line
