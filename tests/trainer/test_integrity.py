"""What the trainer reads back is checked against what it wrote: checkpoints (checksum, config hash),
finished folds' records, the data table; and a full disk ends in one line with nothing half-written."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import polars as pl
import pytest
import torch

from fvc_core.errors import UserError
from fvc_core.training import checkpoint
from fvc_core.training.checkpoint import CheckpointError
from fvc_core.training.trainer import SupervisedTrainer
from tests.builders import tiny_experiment, tiny_videos
from tests.tmpfs import mounted_tmpfs
from tests.trainer.helpers import TinyDataset, make_job, small_config
from tests.trainer.run_tiny import RESUME_CONFIG
from tests.trainer.test_resume import InterruptingDataset, metrics, reference_run

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def stopped_in_fold_0(out: Path):
    """A run stopped (Ctrl-C) in fold 0's second epoch: fold_0 holds last.pt and model.pt of epoch 1
    (min_epochs 1: epoch 1 may be kept)."""
    config = small_config(**{**RESUME_CONFIG, "early_stopping": {**RESUME_CONFIG["early_stopping"], "min_epochs": 1}})
    with pytest.raises(KeyboardInterrupt):
        SupervisedTrainer(config).run(make_job(out, config, dataset=InterruptingDataset(at=10)))
    return config


def zero_inside(path: Path, limit: int = 40_000) -> None:
    """Zero up to ``limit`` bytes of the largest tensor record, leaving a zip torch still loads."""
    with zipfile.ZipFile(path) as archive:
        info = max((i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    with open(path, "r+b") as f:
        f.seek(info.header_offset + 26)
        name_len, extra_len = int.from_bytes(f.read(2), "little"), int.from_bytes(f.read(2), "little")
        start = info.header_offset + 30 + name_len + extra_len
        f.seek(start)
        f.write(bytes(min(limit, info.file_size)))


def test_a_damaged_last_pt_is_refused_and_deleting_the_fold_recovers(tmp_path):
    out = tmp_path / "run"
    config = stopped_in_fold_0(out)
    last = out / "tiny_model/fold_0/last.pt"
    zero_inside(last)
    torch.load(last, weights_only=True)  # still loads: torch alone would resume from zeroed weights
    with pytest.raises(CheckpointError) as caught:
        SupervisedTrainer(config).run(make_job(out, config))
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{last}: corrupt (checksum mismatch")
    assert f"delete {out / 'tiny_model/fold_0'} to train fold 0 again from scratch" in text and "--fresh" in text
    # The way out the line gives ends with the same result as a run never interrupted.
    shutil.rmtree(out / "tiny_model/fold_0")
    SupervisedTrainer(config).run(make_job(out, config))
    reference_run(tmp_path / "reference")
    assert metrics(out) == metrics(tmp_path / "reference")


def test_a_damaged_best_model_is_caught_when_the_fold_resumes(tmp_path):
    out = tmp_path / "run"
    config = stopped_in_fold_0(out)
    best = out / "tiny_model/fold_0/model.pt"
    zero_inside(best)
    job = make_job(out, config)
    with pytest.raises(CheckpointError, match=rf"^{best}: corrupt \(checksum mismatch"):
        SupervisedTrainer(config).run(job)
    assert job.trackers.epochs == []  # refused before training another epoch on top of it


def test_a_last_pt_of_another_config_or_without_its_record_is_refused(tmp_path):
    out = tmp_path / "run"
    config = stopped_in_fold_0(out)
    last = out / "tiny_model/fold_0/last.pt"
    state = torch.load(last, weights_only=True)
    checkpoint.save_atomic({**state, "config_hash": "0123456789abcdef"}, last)
    with pytest.raises(CheckpointError, match=rf"^{last}: written by a run of another config \(hash "
                                              r"0123456789abcdef, this run h\); delete .*fold_0"):
        SupervisedTrainer(config).run(make_job(out, config))
    checkpoint.checksum_path(last).unlink()
    with pytest.raises(CheckpointError, match=rf"^{last}: no checksum record \(last.pt.sha256\)"):
        SupervisedTrainer(config).run(make_job(out, config))


def test_the_checksum_record_matches_the_file_after_every_save(tmp_path):
    path = tmp_path / "x.pt"
    for value in range(3):
        checkpoint.save_atomic({"w": torch.full((4,), float(value))}, path)
        assert checkpoint.recorded_checksums(path) == [checkpoint.file_sha256(path)]
        assert (tmp_path / "x.pt.sha256").read_text() == f"{checkpoint.file_sha256(path)}  x.pt\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pt", "x.pt.sha256"]


def finished(out: Path, dataset: TinyDataset | None = None):
    config = small_config(epochs=1)
    SupervisedTrainer(config).run(make_job(out, config, dataset=dataset))
    return config


@pytest.mark.parametrize("name", ["metrics.json", "history.json"])
def test_a_finished_fold_record_cut_short_is_one_line(tmp_path, name):
    out = tmp_path / "run"
    config = finished(out)
    record = out / "tiny_model/fold_1" / name
    record.write_text(record.read_text()[:40])
    with pytest.raises(UserError) as caught:
        SupervisedTrainer(config).run(make_job(out, config))
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{record}: not valid JSON (cut short or damaged")
    assert f"delete {out / 'tiny_model/fold_1'} to train fold 1 again" in text


def test_a_changed_table_is_refused_for_a_finished_fold_even_without_its_split_file(tmp_path):
    out = tmp_path / "run"
    config = finished(out)
    before = (out / "tiny_model/fold_0/metrics.json").read_text()
    assert json.loads(before)["table_fingerprint"]
    changed = TinyDataset()
    changed._table = changed.table().with_columns(
        pl.when(pl.col("video_path") == "/mem/fake_02.mp4").then(0).otherwise(pl.col("label")).alias("label"))
    # Without the saved splits, only the fingerprint in metrics.json remembers the table of the run.
    for fold in (0, 1):
        (out / f"tiny_model/fold_{fold}/split.parquet").unlink()
    with pytest.raises(UserError, match=r"fold_0/metrics.json: fold 0 was trained on another data table"):
        SupervisedTrainer(config).run(make_job(out, config, dataset=changed))
    assert (out / "tiny_model/fold_0/metrics.json").read_text() == before


# -- a full disk ---------------------------------------------------------------------------------------------

FVC = [sys.executable, "-m", "fvc_core.cli"]


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 8 MiB tmpfs mounted for the test (needs root), unmounted after."""
    with mounted_tmpfs(tmp_path / "small", "size=8m", "a full disk is not tested here") as mount:
        yield mount


def fill(mount: Path, leave: int) -> Path:
    """A filler file taking all but about ``leave`` bytes of the filesystem."""
    filler = mount / "filler"
    free = shutil.disk_usage(mount).free
    with open(filler, "wb") as f:
        f.write(bytes(max(0, free - leave)))
    return filler


def test_training_into_a_full_disk_is_one_line_and_resumes_once_space_is_freed(tmp_path, small_tmpfs):
    pytest.importorskip("fvc_loaders")
    pytest.importorskip("fvc_naive_cnn")
    tiny_experiment(tmp_path, tiny_videos(tmp_path / "videos", videos=5, seed=3), experiment="full", seed=11,
                    output_dir=str(small_tmpfs / "out"), trainer={"epochs": 2})
    # Room for the splits, records and a model.pt (about 0.4 MB), not for a last.pt (about 1.3 MB) too.
    filler = fill(small_tmpfs, leave=900_000)
    env = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
    command = [*FVC, "run", str(tmp_path / "experiment.yaml")]
    full = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert full.returncode == 2, full.stdout + full.stderr
    lines = full.stderr.strip().splitlines()
    assert len(lines) == 1 and "no space left on the device" in lines[0], full.stderr
    assert "naive_cnn/fold_0/" in lines[0]
    assert not [p for p in small_tmpfs.rglob("*") if p.name.endswith(".tmp")]
    assert not (small_tmpfs / "out/naive_cnn/fold_0/metrics.json").exists()

    filler.unlink()
    again = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    for fold in (0, 1):
        fold_dir = small_tmpfs / "out/naive_cnn" / f"fold_{fold}"
        assert json.loads((fold_dir / "metrics.json").read_text())["n"] > 0
        assert not (fold_dir / "last.pt").exists()
    assert not [p for p in small_tmpfs.rglob("*") if p.name.endswith(".tmp")]
