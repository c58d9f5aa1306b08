"""The executor: section: local by default, each plugin's keys validated and overridable, in fvc
schema, a missing fvc-ray named in one line; and start-up commands import neither torch nor Ray."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fvc_core.config import json_schema, load_config
from fvc_core.errors import ConfigError

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart.yaml"
FVC = [sys.executable, "-m", "fvc_core.cli"]


def test_the_default_executor_is_local_and_config_yaml_says_so():
    config = load_config(QUICKSTART)
    assert config.executor.name == "local"
    assert config.as_dict()["executor"] == {"name": "local"}


def test_where_folds_run_is_not_part_of_what_is_measured():
    pytest.importorskip("fvc_ray")
    local = load_config(QUICKSTART)
    on_ray = load_config(QUICKSTART, ["executor.name=ray", "executor.num_cpus=2"])
    # Same hash: a run started locally resumes on a cluster, and the other way round.
    assert on_ray.hash() == local.hash()
    assert on_ray.as_dict()["executor"]["num_cpus"] == 2.0


def test_an_executors_keys_are_validated_by_its_plugin():
    pytest.importorskip("fvc_ray")
    config = load_config(QUICKSTART, ["executor.name=ray", "executor.address=auto", "executor.max_concurrent=2",
                                      "executor.max_retries=1"])
    assert (config.executor.config.address, config.executor.config.max_concurrent,
            config.executor.config.max_retries) == ("auto", 2, 1)
    with pytest.raises(ConfigError) as err:
        load_config(QUICKSTART, ["executor.name=ray", "executor.num_cpu=2", "executor.max_concurrent=0"])
    problems = sorted(p.split(": ", 1)[0] for p in err.value.problems)
    assert problems == ["executor.max_concurrent", "executor.num_cpu"]
    assert any("did you mean 'num_cpus'" in p for p in err.value.problems)
    with pytest.raises(ConfigError, match=r"executor\.address: unknown key"):
        load_config(QUICKSTART, ["executor.address=auto"])  # local has no keys
    assert config.executor.config.rank_placement == "worker"  # a data-parallel fold's ranks in its one worker
    with pytest.raises(ConfigError, match=r"executor\.rank_placement: Input should be 'worker', .*'strict_spread'"):
        load_config(QUICKSTART, ["executor.name=ray", "executor.rank_placement=spred"])


def test_fvc_schema_has_a_variant_per_executor():
    schema = json_schema()
    names = {v["properties"]["name"]["const"] for v in schema["properties"]["executor"]["oneOf"]}
    assert "local" in names
    local = next(v for v in schema["properties"]["executor"]["oneOf"] if v["properties"]["name"]["const"] == "local")
    assert "name" not in local["required"]  # executor: {} is the local executor
    if "fvc_ray" in sys.modules or _installed("fvc_ray"):
        assert "ray" in names


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def test_ray_without_fvc_ray_is_one_line_exit_2_and_names_the_plugin(tmp_path):
    out = tmp_path / "out"
    done = subprocess.run([*FVC, "-p", "no:ray", "check", str(QUICKSTART), "executor.name=ray",
                           f"output_dir={out}"], capture_output=True, text=True)
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    # Installed but disabled here: said as such, naming the distribution (not "unknown", not "install it").
    assert ("executor.name: executor 'ray' is disabled: it comes with the plugin 'ray' (fvc-ray)" in line
            and "pip install" not in line) if _installed("fvc_ray") else (
        "executor.name: unknown executor 'ray'" in line and "fvc-ray (pip install" in line)
    assert not out.exists()


def test_help_plugins_and_check_import_neither_torch_nor_ray():
    code = (
        "import sys, contextlib, io\n"
        "from fvc_core.cli import main\n"
        f"for argv in (['--help'], ['plugins'], ['check', {str(QUICKSTART)!r}, 'executor.name=ray']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try: main(argv)\n"
        "        except SystemExit: pass\n"
        "print(json.dumps([m for m in ('torch', 'ray') if m in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
