"""``fvc_core.open_run``: the example of docs/core.md, run as written on a tiny finished run, reads the
numbers the run wrote, and each fold's model scores a video as the fold scored it in training."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import polars as pl
import pytest

import fvc_core
from fvc_core.contract import UserError

REPO = Path(__file__).resolve().parents[2]


def _doc_example() -> str:
    text = (REPO / "docs/core.md").read_text()
    section = text.split("## Reading a finished run", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_example_reads_the_run_as_it_was_written(tiny_run):
    # A video of the run's table that fold 0 tested: its recorded score is the one to find again.
    recorded = pl.read_parquet(tiny_run / "fold_0/predictions.parquet")
    video = recorded["video_path"][0]
    code = _doc_example().replace("runs/quickstart/naive_cnn", str(tiny_run)).replace(
        "videos/fake/fake_000.mp4", video)
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as shown:
        exec(compile(code, "docs/core.md", "exec"), namespace)  # noqa: S102  (the repository's own doc)
    assert "roc_auc" in shown.getvalue()
    run = namespace["run"]

    assert run.config["model"]["name"] == "naive_cnn"
    assert run.protocol == json.loads((tiny_run / "run.json").read_text())["protocol"]
    assert run.folds["fold"].to_list() == [0, 1]
    for fold in (0, 1):
        written = json.loads((tiny_run / f"fold_{fold}/metrics.json").read_text())
        row = run.metrics.filter(pl.col("fold") == fold).row(0, named=True)
        assert row["roc_auc"] == written["roc_auc"] and row["accuracy"] == written["accuracy"]
    pooled = pl.concat([pl.read_parquet(tiny_run / f"fold_{k}/predictions.parquet") for k in (0, 1)])
    assert run.predictions.sort("fold", "video_path").equals(pooled.sort("fold", "video_path"))

    assert namespace["model"].training is False
    scores = namespace["scores"]
    # Fold 0's model, loaded back, gives the video the score fold 0 recorded for it in training.
    assert scores["score_fold_0"][0] == pytest.approx(recorded["score"][0], abs=1e-5)
    assert scores["score"][0] == pytest.approx((scores["score_fold_0"][0] + scores["score_fold_1"][0]) / 2)


def test_a_fold_that_is_not_there_is_one_line(tiny_run):
    with pytest.raises(UserError, match=r"fold 7 has not finished \(finished: 0, 1\)"):
        fvc_core.open_run(tiny_run).model(7)
