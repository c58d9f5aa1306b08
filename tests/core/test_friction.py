"""What an outside plugin author ran into (issue 24): disabling by a wrong name, reading `fvc plugins`
when a plugin is broken, piping fvc into `head`, relative paths in a config."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fvc_core.cli import main
from fvc_core.config import load_config
from fvc_core.errors import ConfigError, PluginError
from fvc_core.plugins import DISABLE_ENV, get_registry
from tests.builders import write_distribution

from .conftest import MODEL_PLUGIN

REPO = Path(__file__).resolve().parents[2]
FVC = [sys.executable, "-m", "fvc_core.cli"]

BROKEN = '''
def _deep():
    raise RuntimeError("boom while importing the plugin: " + "a long explanation " * 20 + "\\nsecond line")

_deep()
'''


@pytest.fixture
def widemodels(site, monkeypatch):
    monkeypatch.delenv(DISABLE_ENV, raising=False)
    write_distribution(site, "fvctest-wide", {"fvctest_wide": MODEL_PLUGIN.format(name="wide")},
                       {"widemodels": "fvctest_wide"})
    return site


def test_p_no_with_a_name_no_plugin_has_is_an_error_with_the_closest_name(widemodels, capsys):
    assert main(["-p", "no:widemodel", "plugins"]) == 2
    [err] = capsys.readouterr().err.splitlines()
    assert err.startswith("error: -p no:widemodel: no installed plugin is named 'widemodel' (did you mean "
                          "'widemodels'")
    assert main(["-p", "no:widemodels", "plugins", "--json"]) == 0


def test_plugins_disable_with_an_unknown_name_is_a_config_error(widemodels, tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text("data: {name: synthetic}\nmodel: {name: wide}\ntrackers: []\n"
                    "plugins: {disable: [console, widemodel]}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    [problem] = err.value.problems
    assert problem.startswith("plugins.disable[1]: no installed plugin is named 'widemodel' (did you mean "
                              "'widemodels'")


def test_a_disabled_plugins_name_says_it_is_disabled_not_unknown(widemodels):
    with pytest.raises(PluginError) as err:
        get_registry(["widemodels"]).get("models", "wide", where="model")
    assert str(err.value) == ("model: model 'wide' is disabled: it comes with the plugin 'widemodels' "
                              "(fvctest-wide), left out by -p no:widemodels or plugins.disable")
    with pytest.raises(PluginError, match="unknown model 'wdie'"):
        get_registry(["widemodels"]).get("models", "wdie")


def _fvc(args: list[str], site: Path | None = None, **kwargs) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FVC_")}
    env.update(COLUMNS="80", CI="1")
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return subprocess.run([*FVC, *args], cwd=REPO, env=env, text=True, check=False, **kwargs)


def test_fvc_plugins_gives_one_line_per_failed_plugin_at_80_columns_piped(site):
    write_distribution(site, "fvctest-broken", {"fvctest_broken": BROKEN}, {"broken": "fvctest_broken"})
    out = _fvc(["plugins"], site, capture_output=True)
    assert out.returncode == 1, out.stderr  # listed, and a script or CI job can tell that one failed
    mentions = [line for line in out.stdout.splitlines() if "boom" in line]
    assert len(mentions) == 1, out.stdout
    assert mentions[0].startswith("failed to load: broken (fvctest-broken 1.2.3): RuntimeError: boom while "
                                  "importing the plugin: a long explanation")
    assert "Traceback" not in out.stdout + out.stderr
    assert "fvc plugins --traceback" in out.stdout
    # The plugin's author sees where it failed.
    shown = _fvc(["plugins", "--traceback"], site, capture_output=True)
    assert shown.returncode == 1
    assert "Traceback (most recent call last)" in shown.stdout
    assert "fvctest_broken.py" in shown.stdout and "in _deep" in shown.stdout


@pytest.mark.parametrize("args", [["schema"], ["plugins"], ["--help"], ["check", "examples/quickstart.yaml"],
                                  ["plugins", "--json"]])
def test_a_closed_pipe_is_a_normal_end(args):
    # `fvc schema | head`: the reader is gone before fvc writes; deterministic, unlike a real head.
    read, write = os.pipe()
    os.close(read)
    try:
        out = _fvc(args, stdout=write, stderr=subprocess.PIPE)
    finally:
        os.close(write)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


def test_relative_paths_are_taken_from_the_yaml_file_and_overrides_from_the_working_dir(tmp_path, monkeypatch):
    pytest.importorskip("fvc_duckdb")
    folder = tmp_path / "project" / "configs"
    folder.mkdir(parents=True)
    (folder / "exp.yaml").write_text(
        "output_dir: ../runs\n"
        "data: {name: metadata, metadata: tables/videos.parquet}\n"
        "model: {name: naive_cnn}\n"
        "trackers: [duckdb]\n"
        "duckdb: {path: ~/results.duckdb}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    config = load_config("../project/configs/exp.yaml")
    assert config.output_dir == tmp_path / "project" / "runs"
    assert config.data.config.metadata == folder / "tables" / "videos.parquet"
    assert config.trackers[0].config.path == tmp_path / "home" / "results.duckdb"
    # Same files from whatever folder fvc starts in: the same config, the same hash.
    monkeypatch.chdir(folder)
    again = load_config("exp.yaml")
    assert again.as_dict() == config.as_dict() and again.hash() == config.hash()
    # A path typed on the command line is the shell's: from the working directory.
    moved = load_config("exp.yaml", ["output_dir=out", "data.metadata=t.parquet", "data={metadata: u.parquet}"])
    assert moved.output_dir == folder / "out"
    assert moved.data.config.metadata == folder / "u.parquet"
    monkeypatch.chdir(elsewhere)
    moved = load_config("../project/configs/exp.yaml", ["output_dir=out"])
    assert moved.output_dir == elsewhere / "out"
    assert moved.data.config.metadata == folder / "tables" / "videos.parquet"
