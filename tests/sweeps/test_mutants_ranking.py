"""A real `fvc sweep` (PyAV-encoded synthetic clips, naive_cnn, 2 folds, 2 epochs) over two learning
rates x three seeds, chosen on ``val_eer``; its sweep.parquet checked against numbers recomputed here
from each fold's own files: the ranking puts the lowest EER first (a mutant that maximised val_eer
ranked the worst point first), and each configuration's 95 % interval over its seeds has the width of
Nadeau and Bengio's corrected resampled t (a mutant without the n_test/n_train term gave 0.38 of it
and passed: the old test only checked low < mean < high)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("fvc_loaders")
pytest.importorskip("fvc_naive_cnn")

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
from scipy import stats  # noqa: E402

FVC = str(Path(sys.executable).parent / "fvc")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "CI": "1"}
SCORES = ("accuracy", "precision", "recall", "f1_score", "roc_auc", "average_precision", "eer")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eer_sweep")
    config = {
        "experiment": "eer", "output_dir": str(root / "out"),
        # 16 sources: 8 validation videos a fold, so the EER takes more values than 0, 0.5 and 1
        "data": {"name": "synthetic", "root": str(root / "videos"), "videos": 16, "frames": 8, "frame_size": 32,
                 "num_frames": 4, "size": 32, "seed": 5},
        "model": {"name": "naive_cnn", "chunk_size": 2},
        "trainer": {"name": "supervised", "folds": 2, "epochs": 2, "grad_accum": 2, "warmup_epochs": 0,
                    "num_workers": 0, "val_fraction": 0.5, "early_stopping": {"patience": None, "metric": "val_eer"}},
        "trackers": ["console"],
    }
    path = root / "experiment.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([FVC, "sweep", str(path), "trainer.lr=1.0e-4,3.0e-2", "seed=1,2,3", "--name", "g"],
                          env=ENV, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    return root / "out" / "g"


def fold_dirs(folder: Path, row: dict) -> list[Path]:
    dirs = [d for point in row["point"].split() for d in sorted((folder / point).glob("fold_*"))]
    assert len(dirs) == 6, row["point"]  # 3 seeds x 2 folds
    return dirs


def lowest_eer(fold_dir: Path) -> float:
    return min(h["val_eer"] for h in json.loads((fold_dir / "history.json").read_text()))


def test_a_sweep_on_val_eer_ranks_the_lowest_first(sweep: Path):
    rows = list(pl.read_parquet(sweep / "sweep.parquet").iter_rows(named=True))
    chosen = [[lowest_eer(d) for d in fold_dirs(sweep, row)] for row in rows]
    means = [float(np.mean(c)) for c in chosen]
    assert means[0] < means[1], means  # the lower EER first; distinct, or the order would prove nothing
    for row, values in zip(rows, chosen, strict=True):
        # every fold kept the epoch of its lowest val_eer, and the row's mean is theirs
        assert [json.loads((d / "metrics.json").read_text())["best_metric_value"]
                for d in fold_dirs(sweep, row)] == values, row["point"]
        assert row["val_eer_mean"] == pytest.approx(np.mean(values))
    assert [r["rank"] for r in rows] == [1, 2] and {r["selection_mode"] for r in rows} == {"min"}
    table = json.loads((sweep / "sweep.json").read_text())
    assert [r["point"] for r in table["ranking"]] == [r["point"] for r in rows]


def corrected_interval(values: list[float], n_test_over_n_train: float, clip: bool) -> tuple[float, float]:
    """Nadeau & Bengio (2003), corrected resampled t: variance s^2 * (1/J + n_test/n_train), J - 1 dof."""
    x = np.array([v for v in values if not math.isnan(v)])
    half = stats.t.ppf(0.975, len(x) - 1) * math.sqrt(x.var(ddof=1) * (1 / len(x) + n_test_over_n_train))
    low, high = x.mean() - half, x.mean() + half
    return (max(0.0, low), min(1.0, high)) if clip else (low, high)


def test_the_seeds_interval_has_the_nadeau_bengio_width(sweep: Path):
    rows = list(pl.read_parquet(sweep / "sweep.parquet").iter_rows(named=True))
    unclipped = {"low": 0, "high": 0}
    for row in rows:
        dirs = fold_dirs(sweep, row)
        splits = [pl.read_parquet(d / "split.parquet")["part"].to_list() for d in dirs]
        ratio = float(np.mean([s.count("test") / (len(s) - s.count("test")) for s in splits]))
        records = [json.loads((d / "metrics.json").read_text()) for d in dirs]
        intervals = {"val_eer": [lowest_eer(d) for d in dirs],
                     **{f"test_{m}": [float(r[m]) for r in records] for m in SCORES}}
        for name, values in intervals.items():
            low, high = corrected_interval(values, ratio, clip=True)  # every one of them lives in [0, 1]
            assert (row[f"{name}_ci95_low"], row[f"{name}_ci95_high"]) == (
                pytest.approx(low, abs=1e-9), pytest.approx(high, abs=1e-9)), (row["point"], name, values)
            unclipped["low"] += 0 < low < high
            unclipped["high"] += low < high < 1
    # intervals inside (0, 1): their width is the formula's, not a bound's
    assert unclipped["low"] >= 3 and unclipped["high"] >= 3, unclipped
