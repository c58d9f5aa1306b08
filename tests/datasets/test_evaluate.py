"""``fvc evaluate``: a real run trained on a miniature FF++ scores a miniature Celeb-DF and DFD."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

pytest.importorskip("fvc_naive_cnn")

from fvc_core.cli import main  # noqa: E402
from fvc_core.training.metrics import compute_metrics  # noqa: E402
from fvc_core.training.predict import score_videos  # noqa: E402
from tests.datasets import miniature  # noqa: E402

PAIRS = {"train": [["000", "003"], ["001", "002"], ["008", "009"], ["010", "011"]],
         "val": [["004", "005"]], "test": [["006", "007"]]}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A 2-fold naive_cnn run on an indexed FF++ miniature, and indexed Celeb-DF and DFD miniatures."""
    root = tmp_path_factory.mktemp("cross")
    tables = root / "tables"
    miniature.ffpp(root / "ffpp", pairs=PAIRS)
    miniature.celebdf(root / "celeb")
    miniature.dfd(root / "dfd")
    for name, layout, folder in (("ffpp", "ffpp", "ffpp"), ("celebdf", "celebdf", "celeb"), ("dfd", "dfd", "dfd")):
        assert main(["index", str(root / folder), "--layout", layout, "-o", str(tables / f"{name}.parquet")]) == 0
    config = {
        "experiment": "cross", "seed": 1, "output_dir": str(root / "runs"),
        "data": {"name": "metadata", "metadata": str(tables / "ffpp.parquet"), "group_column": "group",
                 "num_frames": 2, "size": 32},
        "model": {"name": "naive_cnn", "chunk_size": 2},
        "trainer": {"name": "supervised", "folds": 2, "epochs": 1, "grad_accum": 1, "warmup_epochs": 0,
                    "num_workers": 0},
        "trackers": ["console"],
    }
    (root / "experiment.yaml").write_text(yaml.safe_dump(config))
    assert main(["run", str(root / "experiment.yaml")]) == 0
    return {"root": root, "run": root / "runs" / "naive_cnn", "ffpp": tables / "ffpp.parquet",
            "celebdf": tables / "celebdf.parquet", "dfd": tables / "dfd.parquet"}


def read_metrics(run: Path, name: str) -> dict:
    return json.loads((run / "eval" / name / "metrics.json").read_text())


def test_evaluate_scores_another_table_with_every_fold(world, capsys):
    run = world["run"]
    assert main(["evaluate", str(run), str(world["celebdf"]), "--name", "celebdf"]) == 0
    metrics = read_metrics(run, "celebdf")
    predictions = pl.read_parquet(run / "eval/celebdf/predictions.parquet")

    table = pl.read_parquet(world["celebdf"])
    assert predictions.height == table.height == 9
    assert set(predictions["video_path"]) == {str((world["celebdf"].parent / p).resolve()) for p in table["video_path"]}
    # The numbers are those of the run's own fold models, as fvc predict gives them.
    direct = score_videos(run, predictions["video_path"].to_list()).sort("video_path")
    ours = predictions.sort("video_path")
    for col in ("score", "score_fold_0", "score_fold_1"):
        assert ours[col].to_list() == pytest.approx(direct[col].to_list(), abs=1e-6)
    # metrics.json is recomputable from predictions.parquet.
    labels = predictions["label"].to_list()
    assert metrics["overall"]["fold_mean_score"]["roc_auc"] == pytest.approx(
        compute_metrics(labels, predictions["score"].to_list())["roc_auc"])
    assert metrics["overall"]["folds"]["1"]["accuracy"] == pytest.approx(
        compute_metrics(labels, predictions["score_fold_1"].to_list())["accuracy"])
    assert set(metrics["per_method"]) == {"Celeb-synthesis"}
    assert metrics["real_methods"] == {"Celeb-real": 4, "YouTube-real": 2}
    protocol = metrics["protocol"]
    assert protocol["dataset"] == "celebdf" and protocol["layout"] == "celebdf" and protocol["split"] is None
    assert protocol["clips"]["num_frames"] == 2 and protocol["clips"]["size"] == 32
    assert protocol["clips"]["augment"] is False and "metadata" not in protocol["clips"]
    assert protocol["folds"] == [0, 1] and len(protocol["table_sha256"]) == 64
    assert protocol["trained_on"].endswith("ffpp.parquet")
    assert not [p for p in (run / "eval/celebdf").iterdir() if p.name.endswith(".tmp")]


def test_per_method_metrics_pit_each_method_against_every_real(world):
    run = world["run"]
    assert main(["evaluate", str(run), str(world["ffpp"]), "--name", "ffpp_test", "--split", "test"]) == 0
    metrics = read_metrics(run, "ffpp_test")
    predictions = pl.read_parquet(run / "eval/ffpp_test/predictions.parquet")
    assert set(predictions["table_split"]) == {"test"} and predictions.height == 6
    assert set(metrics["per_method"]) == {"Deepfakes", "FaceSwap"}
    for method in ("Deepfakes", "FaceSwap"):
        block = metrics["per_method"][method]["fold_mean_score"]
        part = predictions.filter((pl.col("label") == 0) | (pl.col("method") == method))
        assert (block["n_real"], block["n_fake"]) == (2, 2)
        assert block["roc_auc"] == pytest.approx(compute_metrics(part["label"], part["score"])["roc_auc"])
    assert metrics["protocol"]["split"] == "test"


def test_same_file_name_under_two_methods_is_scored_twice(world):
    run = world["run"]
    assert main(["evaluate", str(run), str(world["ffpp"]), "--name", "ffpp_all"]) == 0
    predictions = pl.read_parquet(run / "eval/ffpp_all/predictions.parquet")
    twins = predictions.filter(pl.col("video_path").str.ends_with("/000_003.mp4"))
    assert sorted(twins["method"]) == ["Deepfakes", "FaceSwap"] and twins["video_path"].n_unique() == 2
    assert predictions.height == pl.read_parquet(world["ffpp"]).height


def test_several_tables_print_the_matrix(world, capsys):
    run = world["run"]
    capsys.readouterr()
    assert main(["evaluate", str(run), "--table", f"celebdf={world['celebdf']}",
                 "--table", f"dfd={world['dfd']}"]) == 0
    out = capsys.readouterr().out
    assert "rows: trained on" in out and "columns: tested on" in out
    header = next(line for line in out.splitlines() if "celebdf" in line and "dfd" in line)
    assert header.index("celebdf") < header.index("dfd")
    auc = read_metrics(run, "dfd")["overall"]["fold_mean_score"]["roc_auc"]
    assert f"{auc:.3f}" in out
    assert (run / "eval/dfd/predictions.parquet").is_file()


def test_a_folder_not_made_by_fvc_is_never_overwritten(world, capsys):
    run = world["run"]
    mine = run / "eval" / "mine"
    mine.mkdir(parents=True)
    (mine / "metrics.json").write_text("my own numbers")
    assert main(["evaluate", str(run), str(world["dfd"]), "--name", "mine"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(mine) in err[0] and "did not make" in err[0]
    assert (mine / "metrics.json").read_text() == "my own numbers"
    # An evaluation fvc made is its own to replace.
    assert main(["evaluate", str(run), str(world["dfd"]), "--name", "dfd_again"]) == 0
    assert main(["evaluate", str(run), str(world["dfd"]), "--name", "dfd_again"]) == 0


def test_bad_input_is_one_line_each_and_writes_nothing(world, tmp_path, capsys):
    run = world["run"]
    table = pl.read_parquet(world["dfd"]).with_columns(
        pl.col("video_path").map_elements(lambda p: str((world["dfd"].parent / p).resolve()), return_dtype=pl.String))
    broken = table.with_columns(pl.when(pl.int_range(pl.len()) < 2).then(pl.lit("/nowhere/") + pl.col("video_path"))
                                .otherwise(pl.col("video_path")).alias("video_path"))
    broken.write_parquet(tmp_path / "broken.parquet")
    capsys.readouterr()
    assert main(["evaluate", str(run), str(tmp_path / "broken.parquet"), "--name", "broken"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("not found" in line and "/nowhere/" in line for line in err)
    assert not (run / "eval" / "broken").exists()

    assert main(["evaluate", str(run), str(world["dfd"]), "--name", "dfd_split", "--split", "test"]) == 2
    assert "no rows with split 'test'" in capsys.readouterr().err
    assert main(["evaluate", str(run), str(world["dfd"]), "--name", "a/b"]) == 2
    assert "--name" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path), str(world["dfd"])]) == 2
    assert "config.yaml: not found" in capsys.readouterr().err


def test_a_table_made_by_another_tool_is_read_through_its_own_column_names(world, tmp_path, capsys):
    """A DFDC-style CSV (filename, label REAL/FAKE): --video-column/--label-column read it, and its
    scores and metrics are the ones fvc gives the same videos from its own table."""
    run = world["run"]
    ours = pl.read_parquet(world["dfd"])
    theirs = ours.select(
        pl.col("video_path").map_elements(lambda p: str((world["dfd"].parent / p).resolve()),
                                          return_dtype=pl.String).alias("filename"),
        pl.col("label").cast(pl.String).str.to_uppercase().replace({"0": "REAL", "1": "FAKE"}).alias("label"))
    theirs.write_csv(tmp_path / "other.csv")
    capsys.readouterr()
    assert main(["evaluate", str(run), str(tmp_path / "other.csv"), "--name", "other_tool"]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'other.csv'}: no column 'video_path' (columns: "
                                       "filename, label; --video-column names another)\n")
    assert main(["evaluate", str(run), str(tmp_path / "other.csv"), "--name", "other_tool",
                 "--video-column", "filename"]) == 0
    assert main(["evaluate", str(run), str(world["dfd"]), "--name", "dfd_own"]) == 0
    other, own = read_metrics(run, "other_tool"), read_metrics(run, "dfd_own")
    assert other["overall"]["fold_mean_score"] == own["overall"]["fold_mean_score"]
    scored = pl.read_parquet(run / "eval/other_tool/predictions.parquet")
    assert scored.height == ours.height
    assert sorted(scored["label"].to_list()) == sorted(pl.read_parquet(run / "eval/dfd_own/predictions.parquet")
                                                       ["label"].to_list())
    assert "table_filename" in scored.columns  # the table's own columns ride along under the prefix
