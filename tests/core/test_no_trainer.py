"""`fvc -p no:supervised` leaves the built-in trainer out for real: never imported, and said in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.builders import tiny_experiment, tiny_videos

FVC = str(Path(sys.executable).parent / "fvc")
LINE = ("error: {path}: trainer.name: no trainer is registered (plugins left out by -p no:NAME or "
        "plugins.disable: supervised)\n")
# `fvc` itself, with the modules it loaded written down as it exits.
WATCHED = """\
import atexit, sys
atexit.register(lambda: open(sys.argv.pop(1), "w").write("\\n".join(sorted(sys.modules))))
from fvc_core.cli import main
sys.exit(main(sys.argv[2:]))
"""


@pytest.fixture
def experiment(tmp_path):
    pytest.importorskip("fvc_loaders")
    pytest.importorskip("fvc_naive_cnn")
    return tiny_experiment(tmp_path, tiny_videos(tmp_path / "videos", videos=2))


def test_fvc_run_without_the_trainer_says_so_in_one_line_and_writes_nothing(experiment, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "FVC_DISABLE_PLUGINS"}
    done = subprocess.run([FVC, "-p", "no:supervised", "run", str(experiment)], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", LINE.format(path=experiment))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["experiment.yaml", "videos"]  # no out/


@pytest.mark.parametrize("command", ["run", "check"])
def test_the_trainer_is_never_imported_when_left_out(experiment, tmp_path, command):
    loaded = tmp_path / "modules.txt"
    env = {k: v for k, v in os.environ.items() if k != "FVC_DISABLE_PLUGINS"}
    done = subprocess.run([sys.executable, "-c", WATCHED, str(loaded), "-p", "no:supervised", command,
                           str(experiment)], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr == LINE.format(path=experiment)
    modules = loaded.read_text().split()
    assert "fvc_core.config" in modules  # the config was read: the line above is validation's
    assert [m for m in modules if m.startswith(("fvc_core.training", "fvc_core.builtin.supervised"))] == []


def test_with_the_trainer_the_same_check_loads_it(experiment, tmp_path):
    # The watch above sees the trainer when it is there: its absence is the flag's doing.
    loaded = tmp_path / "modules.txt"
    env = {k: v for k, v in os.environ.items() if k != "FVC_DISABLE_PLUGINS"}
    done = subprocess.run([sys.executable, "-c", WATCHED, str(loaded), "check", str(experiment)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "fvc_core.training" in loaded.read_text().split()
