"""The real command line with several config problems at once: every one is printed, one line each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FVC = [sys.executable, "-m", "fvc_core.cli"]

pytest.importorskip("fvc_naive_cnn")
pytest.importorskip("fvc_loaders")


@pytest.mark.parametrize("command", ["check", "run"])
def test_every_config_problem_is_one_line_and_none_is_dropped(command, tmp_path):
    overrides = ["colour=red", "model.chunk_siz=2", "trainer.epochs=-1", "trainer.lr=abc",
                 f"output_dir={tmp_path / 'out'}"]
    done = subprocess.run([*FVC, command, "examples/quickstart.yaml", *overrides], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "CI": "1"}, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert all(line.startswith("error: examples/quickstart.yaml: ") for line in lines), lines
    named = [line.removeprefix("error: examples/quickstart.yaml: ").split(":")[0] for line in lines]
    assert sorted(named) == ["colour", "model.chunk_siz", "trainer.epochs", "trainer.lr"]
    assert "Traceback" not in done.stdout + done.stderr
    assert not (tmp_path / "out").exists()
