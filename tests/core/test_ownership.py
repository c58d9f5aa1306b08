"""fvc removes or overwrites only folders it made (marked .fvc-owned); anything else is refused in one line."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fvc_core import ownership
from fvc_core.cli import main
from fvc_core.errors import UserError

REPO = Path(__file__).resolve().parents[2]
def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    return err


def users_folder(path: Path) -> dict[Path, bytes]:
    """A folder of the user's, named like the run folder: their own notes and a model of theirs."""
    (path / "fold_0").mkdir(parents=True)
    files = {path / "notes.txt": b"my notes", path / "fold_0" / "model.pt": b"my own weights"}
    for file, data in files.items():
        file.write_bytes(data)
    return files


def test_fresh_refuses_to_delete_a_folder_fvc_did_not_make(events, config, tmp_path, capsys):
    files = users_folder(tmp_path / "out" / "m")
    assert main(["run", str(config), "--fresh"]) == 2
    err = one_error_line(capsys)
    assert f"{tmp_path / 'out' / 'm'}: holds files fvc did not make" in err
    assert {f: f.read_bytes() for f in files} == files
    assert events == []  # refused before training


def test_without_fresh_a_users_model_is_never_overwritten(events, config, tmp_path, capsys):
    files = users_folder(tmp_path / "out" / "m")
    assert main(["run", str(config)]) == 2
    assert str(tmp_path / "out" / "m") in one_error_line(capsys)
    assert {f: f.read_bytes() for f in files} == files
    assert sorted(p.name for p in (tmp_path / "out" / "m").rglob("*")) == ["fold_0", "model.pt", "notes.txt"]


def test_an_empty_folder_made_by_the_user_is_taken(events, config, tmp_path):
    (tmp_path / "out" / "m").mkdir(parents=True)
    assert main(["run", str(config)]) == 0
    assert json.loads((tmp_path / "out" / "m" / ownership.MARKER).read_text())["fvc"] == "run"


def test_fresh_removes_fvcs_own_run_folder(events, config, tmp_path):
    assert main(["run", str(config)]) == 0
    run_dir = tmp_path / "out" / "m"
    first = json.loads((run_dir / "run.json").read_text())["run_id"]
    (run_dir / "leftover.txt").write_text("from the first run")
    assert main(["run", str(config), "--fresh"]) == 0
    assert not (run_dir / "leftover.txt").exists()
    assert json.loads((run_dir / "run.json").read_text())["run_id"] != first


def test_a_run_folder_of_the_version_before_markers_is_resumed_and_marked(events, config, tmp_path):
    assert main(["run", str(config)]) == 0
    run_dir = tmp_path / "out" / "m"
    (run_dir / ownership.MARKER).unlink()  # as the landed version left it: run.json with run_id, config_hash
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]
    events.clear()
    assert main(["run", str(config)]) == 0
    assert events[0] == ("start", True)
    assert json.loads((run_dir / "run.json").read_text())["run_id"] == run_id
    assert (run_dir / ownership.MARKER).is_file()
    (run_dir / ownership.MARKER).unlink()
    assert main(["run", str(config), "--fresh"]) == 0  # and --fresh may replace it
    assert json.loads((run_dir / "run.json").read_text())["run_id"] != run_id


def test_a_run_json_that_is_not_fvcs_does_not_make_the_folder_fvcs(events, config, tmp_path, capsys):
    run_dir = tmp_path / "out" / "m"
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text('{"runner": "my own script"}')
    assert main(["run", str(config), "--fresh"]) == 2
    one_error_line(capsys)
    assert (run_dir / "run.json").read_text() == '{"runner": "my own script"}'


def test_fresh_on_a_symlinked_run_folder_is_refused_and_nothing_is_deleted(events, config, tmp_path, capsys):
    elsewhere = tmp_path / "elsewhere"
    assert main(["run", str(config), f"output_dir={elsewhere}"]) == 0  # an fvc run folder, even
    before = sorted(p.name for p in (elsewhere / "m").iterdir())
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "m").symlink_to(elsewhere / "m")
    assert main(["run", str(config), "--fresh"]) == 2
    assert f"{tmp_path / 'out' / 'm'}: is a symbolic link, not removed" in one_error_line(capsys)
    assert (tmp_path / "out" / "m").is_symlink()
    assert sorted(p.name for p in (elsewhere / "m").iterdir()) == before


def test_the_filesystem_root_is_refused_before_anything_is_written(events, config, capsys):
    before = set(os.listdir("/"))
    assert main(["run", str(config), "output_dir=/"]) == 2
    assert "output_dir /: the filesystem root" in one_error_line(capsys)
    assert set(os.listdir("/")) == before


def test_an_output_dir_that_is_a_file_is_refused(events, config, tmp_path, capsys):
    (tmp_path / "afile").write_text("mine")
    assert main(["run", str(config), f"output_dir={tmp_path / 'afile'}"]) == 2
    assert f"output_dir {tmp_path / 'afile'}: exists and is not a folder" in one_error_line(capsys)
    assert (tmp_path / "afile").read_text() == "mine"


def test_a_name_over_the_filesystems_limit_is_one_line(events, config, tmp_path, capsys):
    long = tmp_path / ("x" * 300) / "runs"
    assert main(["run", str(config), f"output_dir={long}"]) == 2
    assert "longer than the filesystem allows" in one_error_line(capsys)


def test_remove_refuses_an_unmarked_folder_and_a_folder_of_another_kind(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "a.txt").write_text("a")
    with pytest.raises(UserError, match="holds files fvc did not make"):
        ownership.remove(theirs, ownership.RUN, way_out="x")
    data = tmp_path / "data"
    ownership.claim(data, ownership.SYNTHETIC, way_out="x")
    (data / "metadata.parquet").write_bytes(b"table")
    with pytest.raises(UserError, match="holds files fvc did not make"):
        ownership.remove(data, ownership.RUN, way_out="x")  # a generated dataset is not a run folder
    assert (theirs / "a.txt").exists() and (data / "metadata.parquet").exists()


def test_quickstart_with_output_dir_plugins_and_fresh_keeps_the_plugins_source(tmp_path):
    """The issue's case: ``fvc run examples/quickstart.yaml output_dir=plugins --fresh`` from the repo root
    deleted plugins/naive_cnn. Here on a copy: a folder named like the model, holding the plugin's source."""
    plugins = tmp_path / "plugins"
    shutil.copytree(REPO / "plugins" / "naive_cnn", plugins / "naive_cnn",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    before = sorted(str(p.relative_to(plugins)) for p in plugins.rglob("*"))
    done = subprocess.run([sys.executable, "-m", "fvc_core.cli", "run", "examples/quickstart.yaml",
                           f"output_dir={plugins}", "--fresh"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"error: {plugins / 'naive_cnn'}: holds files fvc did not make; fvc writes only into folders it made "
        f"(marked {ownership.MARKER}): {'choose another output_dir, or move that folder away'}"]
    after = sorted(str(p.relative_to(plugins)) for p in plugins.rglob("*") if p.name != ".naive_cnn.lock")
    assert after == before
