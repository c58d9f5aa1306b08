"""Checkpoints never run code when loaded, and the run's progress display works on a terminal."""

from __future__ import annotations

import io
import os
import pickle

import pytest
import torch
from rich.console import Console
from rich.text import Text

from fvc_core.training.checkpoint import CheckpointError, load_safe, record_checksum, save_atomic
from fvc_core.training.predict import load_fold_model
from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import make_job, small_config


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"
    fold_dir = tmp_path / "run/fold_0"
    fold_dir.mkdir(parents=True)
    torch.save({"model_state_dict": {}, "evil": Payload(marker)}, fold_dir / "model.pt")
    # Whoever crafts the file can record its checksum too: weights_only is what keeps the code from running.
    record_checksum(fold_dir / "model.pt")
    with pytest.raises(CheckpointError, match=r"model.pt: refused to load: .* could run code"):
        load_fold_model(fold_dir)
    assert not marker.exists()
    # The same file through plain pickle would have run the command: the test's payload is real.
    with open(fold_dir / "model.pt", "rb") as f:
        assert f.read(2) == b"PK"  # a torch zip archive, not a bare pickle
    pickle.loads(pickle.dumps(Payload(marker)))
    assert marker.exists()


def test_garbage_and_missing_checkpoints_are_one_line_errors(tmp_path):
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint")
    record_checksum(tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="model.pt: not a readable checkpoint"):
        load_safe(tmp_path / "model.pt")
    with pytest.raises(CheckpointError, match="other.pt: checkpoint not found"):
        load_safe(tmp_path / "other.pt")


def test_atomic_save_leaves_no_temporary_file(tmp_path):
    save_atomic({"w": torch.ones(2)}, tmp_path / "x.pt")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pt", "x.pt.sha256"]
    assert torch.equal(load_safe(tmp_path / "x.pt")["w"], torch.ones(2))


def test_progress_bars_on_a_terminal(tmp_path):
    torch.set_num_threads(1)
    job = make_job(tmp_path, small_config(epochs=1))
    job.interactive = True
    job.output = io.StringIO()
    job.console = Console(file=job.output, force_terminal=True, width=120)
    SupervisedTrainer(job.config.trainer.config).run(job)
    text = Text.from_ansi(job.output.getvalue()).plain
    # The final refresh shows the last pass (fold 1's test part) and both folds done.
    assert "fold 1 test" in text and "2/2" in text and "mean ± std" in text
