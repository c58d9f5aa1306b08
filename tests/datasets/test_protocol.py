"""Every number carries how it was measured; frame- and video-level metrics; evaluations reach the trackers.

One real run: a miniature FF++ indexed with its layout, letterboxed by ``fvc prepare``, trained with the
naive CNN under ``aggregation: topk`` and tracked in MLflow (sqlite) and DuckDB, then evaluated on a
miniature Celeb-DF. Read back from metrics.json, MlflowClient and DuckDB queries.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
import yaml
from sklearn.metrics import roc_auc_score

pytest.importorskip("fvc_naive_cnn")
pytest.importorskip("fvc_mlflow")
pytest.importorskip("fvc_duckdb")

from mlflow import MlflowClient  # noqa: E402

from fvc_core.cli import main  # noqa: E402
from fvc_core.training.predict import score_videos  # noqa: E402
from tests.datasets import miniature  # noqa: E402

PAIRS = {"train": [["000", "003"], ["001", "002"], ["008", "009"]], "val": [["004", "005"]],
         "test": [["006", "007"]]}
FRAMES, TOP_K = 4, 2


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("protocol")
    miniature.ffpp(root / "ffpp", pairs=PAIRS)
    miniature.celebdf(root / "celeb")
    assert main(["index", str(root / "ffpp"), "--layout", "ffpp", "-o", str(root / "tables/ffpp.parquet")]) == 0
    assert main(["index", str(root / "celeb"), "--layout", "celebdf", "-o", str(root / "tables/celebdf.parquet")]) == 0
    assert main(["prepare", str(root / "tables/ffpp.parquet"), "-o", str(root / "prepared"), "--size", "32",
                 "-j", "1"]) == 0
    config = {
        "experiment": "protocol", "seed": 3, "output_dir": str(root / "runs"),
        "data": {"name": "metadata", "metadata": str(root / "prepared/scaled_metadata.parquet"),
                 "num_frames": FRAMES, "size": 32},
        "model": {"name": "naive_cnn", "chunk_size": 2},
        "trainer": {"name": "supervised", "folds": 2, "epochs": 1, "grad_accum": 1, "warmup_epochs": 0,
                    "num_workers": 0, "aggregation": "topk", "top_k": TOP_K},
        "trackers": ["console", "mlflow", "duckdb"],
        "mlflow": {"log_plots": False},
    }
    (root / "experiment.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(root / "experiment.yaml")]) == 0
    return {"root": root, "run": root / "runs" / "naive_cnn", "celebdf": root / "tables/celebdf.parquet",
            "mlflow": root / "runs" / "mlflow.db", "duckdb": root / "runs" / "results.duckdb",
            "table": root / "prepared/scaled_metadata.parquet"}


def fold_metrics(run: Path) -> list[dict]:
    return [json.loads((run / f"fold_{k}" / "metrics.json").read_text()) for k in (0, 1)]


def check_protocol(protocol: dict, where: str) -> None:
    assert protocol["layout"] == "ffpp", where
    assert protocol["prepare"]["size"] == 32 and protocol["prepare"]["crf"] == 18, where
    assert protocol["metadata"].endswith("scaled_metadata.parquet"), where
    assert (protocol["split"], protocol["folds"], protocol["seed"]) == ("kfold", 2, 3), where
    assert (protocol["num_frames"], protocol["size"], protocol["sampler"]) == (FRAMES, 32, "uniform-time"), where
    assert (protocol["aggregation"], protocol["top_k"]) == ("topk", TOP_K), where


def test_protocol_is_in_every_metrics_file_mlflow_run_and_duckdb_row(world):
    run = world["run"]
    for k, metrics in enumerate(fold_metrics(run)):
        check_protocol(metrics["protocol"], f"fold_{k}/metrics.json")
        assert metrics["aggregation"]["name"] == "topk" and metrics["aggregation"]["top_k"] == TOP_K
    summary = json.loads((run / "summary.json").read_text())
    check_protocol(summary["protocol"], "summary.json")
    assert summary["aggregation"]["name"] == "topk"

    client = MlflowClient(tracking_uri=f"sqlite:///{world['mlflow']}")
    experiment = client.get_experiment_by_name("protocol")
    runs = client.search_runs([experiment.experiment_id])
    roles = sorted(r.data.tags.get("fvc.role") for r in runs)
    assert roles[:3] == ["fold", "fold", "parent"]
    for found in runs:
        params = found.data.params
        assert params["protocol.layout"] == "ffpp" and params["protocol.aggregation"] == "topk"
        assert params["protocol.prepare.size"] == "32" and params["protocol.num_frames"] == str(FRAMES)
        assert params["protocol.split"] == "kfold" and params["protocol.seed"] == "3"

    with duckdb.connect(str(world["duckdb"]), read_only=True) as con:
        row = con.execute("SELECT protocol->>'layout', protocol->>'aggregation', protocol->'prepare'->>'size', "
                          "protocol->>'split', protocol->>'num_frames' FROM runs").fetchall()
        folds = con.execute("SELECT count(*) FROM results r JOIN runs USING (run_id) "
                            "WHERE runs.protocol->>'layout' = 'ffpp'").fetchone()[0]
    assert row == [("ffpp", "topk", "32", "kfold", str(FRAMES))]
    assert folds == 2


def test_video_scores_follow_the_aggregation_and_frame_auc_is_recorded(world):
    run = world["run"]
    predictions = pl.concat([pl.read_parquet(run / f"fold_{k}" / "predictions.parquet") for k in (0, 1)])
    assert predictions["frame_scores"].list.len().to_list() == [FRAMES] * predictions.height
    # topk: each video's score is the mean of its k largest frame probabilities, not the model's mean logit.
    for score, frames in zip(predictions["score"], predictions["frame_scores"], strict=True):
        assert score == pytest.approx(float(np.mean(sorted(frames)[-TOP_K:])), abs=1e-6)
    for k, metrics in enumerate(fold_metrics(run)):
        part = predictions.filter(pl.col("fold") == k)
        labels = np.repeat(part["label"].to_numpy(), FRAMES)
        frames = np.concatenate(part["frame_scores"].to_list())
        assert metrics["frame_roc_auc"] == pytest.approx(roc_auc_score(labels, frames))
        assert metrics["n_frames"] == part.height * FRAMES
    summary = json.loads((run / "summary.json").read_text())
    assert summary["mean"]["frame_roc_auc"] == pytest.approx(np.mean([m["frame_roc_auc"] for m in fold_metrics(run)]))

    # fvc predict (and so fvc evaluate) scores a video as the training's test scoring did.
    direct = score_videos(run, predictions["video_path"].to_list()).sort("video_path")
    for fold_k in (0, 1):
        mine = predictions.filter(pl.col("fold") == fold_k).sort("video_path")
        theirs = direct.filter(pl.col("video_path").is_in(mine["video_path"].to_list())).sort("video_path")
        assert theirs[f"score_fold_{fold_k}"].to_list() == pytest.approx(mine["score"].to_list(), abs=1e-5)


def test_same_file_name_under_two_methods_stays_two_videos_in_training(world):
    run = world["run"]
    predictions = pl.concat([pl.read_parquet(run / f"fold_{k}" / "predictions.parquet") for k in (0, 1)])
    twins = predictions.filter(pl.col("video_path").str.ends_with("/000_003.mp4"))
    assert twins.height == 2 and twins["video_path"].n_unique() == 2
    table = pl.read_parquet(world["table"])
    method = {str((world["table"].parent / p).resolve()): m
              for p, m in table.select("video_path", "method").iter_rows()}
    assert sorted(method[p] for p in twins["video_path"]) == ["Deepfakes", "FaceSwap"]
    assert predictions.height == predictions["video_path"].n_unique() == table.height
    assert sum(m["n"] for m in fold_metrics(run)) == table.height


def test_an_evaluation_reaches_mlflow_under_the_parent_and_duckdb(world, capsys):
    run = world["run"]
    for _ in range(2):  # evaluating again under the same name replaces the tracked evaluation
        assert main(["evaluate", str(run), str(world["celebdf"]), "--name", "celebdf"]) == 0
    assert "warning" not in capsys.readouterr().out
    metrics = json.loads((run / "eval/celebdf/metrics.json").read_text())
    overall = metrics["overall"]["fold_mean_score"]
    assert overall["frame_roc_auc"] is not None and overall["n_frames"] == overall["n"] * FRAMES
    assert metrics["protocol"]["aggregation"] == {"name": "topk", "how": metrics["protocol"]["aggregation"]["how"],
                                                  "top_k": TOP_K}
    assert metrics["protocol"]["trained_layout"] == "ffpp" and metrics["protocol"]["trained_prepare"]["size"] == 32

    client = MlflowClient(tracking_uri=f"sqlite:///{world['mlflow']}")
    experiment = client.get_experiment_by_name("protocol")
    parent = client.search_runs([experiment.experiment_id], "tags.`fvc.role` = 'parent'")[0]
    evals = client.search_runs([experiment.experiment_id], "tags.`fvc.role` = 'evaluation'")
    assert len(evals) == 1
    found = evals[0]
    assert found.info.run_name == "eval/celebdf" and found.info.status == "FINISHED"
    assert found.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert found.data.metrics["test_auc"] == pytest.approx(overall["roc_auc"])
    assert found.data.metrics["test_frame_roc_auc"] == pytest.approx(overall["frame_roc_auc"])
    assert found.data.metrics["fold_1.test_accuracy"] == pytest.approx(
        metrics["overall"]["folds"]["1"]["accuracy"])
    assert found.data.params["protocol.dataset"] == "celebdf" and found.data.params["protocol.layout"] == "celebdf"
    assert found.data.params["protocol.aggregation.name"] == "topk"
    artifacts = {a.path for a in client.list_artifacts(found.info.run_id)}
    assert {"metrics.json", "predictions.parquet"} <= artifacts

    with duckdb.connect(str(world["duckdb"]), read_only=True) as con:
        rows = con.execute("SELECT scope, scored_by, test_auc, test_frame_roc_auc, n, layout, aggregation "
                           "FROM evaluations WHERE name = 'celebdf' ORDER BY scope, scored_by").fetchall()
        run_id = con.execute("SELECT run_id FROM runs").fetchone()[0]
        owner = con.execute("SELECT DISTINCT run_id FROM evaluations").fetchall()
    assert owner == [(run_id,)]
    mean = [r for r in rows if r[:2] == ("overall", "mean")]
    assert len(mean) == 1 and mean[0][2] == pytest.approx(overall["roc_auc"])
    assert mean[0][3] == pytest.approx(overall["frame_roc_auc"]) and mean[0][4] == overall["n"]
    assert mean[0][5:] == ("celebdf", "topk")
    assert {r[:2] for r in rows} == {(s, b) for s in ("overall", "Celeb-synthesis")
                                     for b in ("mean", "fold_0", "fold_1")}

    capsys.readouterr()
    assert main(["results", "--db", str(world["duckdb"]), "--evaluations"]) == 0
    out = capsys.readouterr().out
    assert "celebdf" in out and f"{overall['roc_auc']:.4f}" in out
