import json
import subprocess
import sys
import textwrap

import pytest

from fvc_core.cli import main
from fvc_core.config import apply_overrides, load_config, load_yaml
from fvc_core.errors import ConfigError, UserError
from tests.builders import write_distribution

from .conftest import MODEL_PLUGIN

DATASET_PLUGIN = '''
from typing import Literal
from pydantic import BaseModel, ConfigDict, Field
from fvc_core.hookspecs import hookimpl

class Early(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patience: int = 5

class Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    num_frames: int = Field(16, ge=1)
    on_bad_video: Literal["fail", "skip"] = "fail"
    early: Early = Field(default_factory=Early)

@hookimpl
def register_datasets(register):
    register("frames", lambda cfg: cfg, config=Cfg)

@hookimpl
def register_trainers(register):
    register("plain", lambda cfg: cfg)
'''


@pytest.fixture
def plugins(site):
    write_distribution(site, "fvctest-m", {"fvctest_m": MODEL_PLUGIN.format(name="wide")}, {"m": "fvctest_m"})
    write_distribution(site, "fvctest-d", {"fvctest_d": DATASET_PLUGIN}, {"d": "fvctest_d"})
    return site


def write(tmp_path, text, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


GOOD = """
experiment: demo
seed: 3
data: {name: frames, num_frames: 8}
model: {name: wide, width: 2}
trainer: {name: plain}
trackers: [console]
"""


def test_overrides_interpolation_and_defaults(plugins, tmp_path):
    path = write(tmp_path, GOOD)
    config = load_config(path, ["data.num_frames=32", "model.width=9", "seed=${data.num_frames}", "trackers=[]"])
    resolved = config.as_dict()
    assert resolved["data"] == {"name": "frames", "num_frames": 32, "on_bad_video": "fail", "early": {"patience": 5}}
    assert resolved["model"] == {"name": "wide", "width": 9}
    assert resolved["seed"] == 32 and resolved["trackers"] == []
    assert resolved["output_dir"] == str(tmp_path / "runs")  # the default, from the YAML file's folder
    # The hash identifies what is measured: trackers and output folder don't change it, the model does.
    same = load_config(path, ["data.num_frames=32", "model.width=9", "seed=32", "output_dir=elsewhere"])
    assert same.hash() == config.hash()
    assert load_config(path, ["data.num_frames=32", "model.width=8", "seed=32"]).hash() != config.hash()


def test_every_problem_is_reported_with_its_key_path(plugins, tmp_path):
    path = write(tmp_path, """
        experiment: demo
        seed: abc
        data: {name: frames, num_frame: 8, on_bad_video: ignore, early: {patiense: 2}}
        model: {name: wdie}
        trackers: [consle]
        outptu_dir: x
    """)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    problems = "\n".join(err.value.problems)
    assert "outptu_dir: unknown key (did you mean 'output_dir'?)" in problems
    assert "seed: Input should be a valid integer" in problems
    # CoreConfig failed first; fix seed and see the plugin sections validated by their own models
    path.write_text(path.read_text().replace("seed: abc", "seed: 1").replace("outptu_dir: x", ""))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    problems = err.value.problems
    text = "\n".join(problems)
    assert "data.num_frame: unknown key (did you mean 'num_frames'?)" in text
    assert "data.on_bad_video: Input should be 'fail' or 'skip' (got 'ignore')" in text
    assert "data.early.patiense: unknown key (did you mean 'patience'?)" in text
    assert "model.name: unknown model 'wdie' (did you mean 'wide'?)" in text
    assert "trackers[0]: unknown tracker 'consle' (did you mean 'console'?)" in text
    assert all(p.startswith(str(path)) for p in str(err.value).splitlines())


def test_bad_override_syntax_names_the_override(plugins, tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError, match="override 'epochs': expected dotted.key=value"):
        load_config(path, ["epochs"])


def test_malformed_yaml_gives_file_line_and_column(tmp_path):
    path = write(tmp_path, "data:\n  name: [frames\nmodel: {}\n")
    with pytest.raises(UserError, match=r"exp.yaml:3:6: invalid YAML"):
        load_config(path)
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_check_prints_the_resolved_config_and_exits_2_on_mistakes(plugins, tmp_path, capsys):
    path = write(tmp_path, GOOD.replace("trainer: {name: plain}", "trainer: {name: none}"))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "trainer.name: unknown trainer 'none'" in err
    assert "Traceback" not in err


def test_disable_in_config(plugins, tmp_path):
    path = write(tmp_path, GOOD + "plugins: {disable: [m]}\n")
    # Not "unknown": the name exists, the config itself turned its plugin off.
    with pytest.raises(ConfigError, match="model.name: model 'wide' is disabled: it comes with the plugin 'm' "
                       r"\(fvctest-m\), left out by -p no:m or plugins.disable"):
        load_config(path)


def test_schema_includes_plugin_sections(plugins, capsys):
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    data_variants = schema["properties"]["data"]["oneOf"]
    frames = next(v for v in data_variants if v["properties"]["name"]["const"] == "frames")
    assert frames["properties"]["on_bad_video"]["enum"] == ["fail", "skip"]
    assert "console" in schema["properties"]["trackers"]["items"]["enum"]


def test_startup_imports_nothing_heavy(tmp_path):
    """fvc --help, plugins and check must not pay for torch, mlflow, sklearn or duckdb."""
    heavy = ("torch", "mlflow", "sklearn", "duckdb", "av", "polars")
    code = (
        "import sys, contextlib, io\n"
        "from fvc_core.cli import main\n"
        "for argv in (['--help'], ['plugins'], ['schema']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try: main(argv)\n"
        "        except SystemExit: pass\n"
        f"print([m for m in {heavy!r} if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_plugin_sections_are_checked_even_when_a_core_key_is_wrong(plugins, tmp_path):
    path = write(tmp_path, GOOD.replace("seed: 3", "seed: -1").replace("width: 2", "width: 0"))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert [p.split(":")[0] for p in err.value.problems] == ["seed", "model.width"]


def test_an_override_of_an_anchored_section_leaves_its_alias_alone(plugins, tmp_path):
    # YAML anchors share one object between sections; an override must change only the one it names.
    path = write(tmp_path, GOOD.replace("data: {name: frames, num_frames: 8}",
                                        "data: &d {name: frames, num_frames: 8}\nfrozen: *d"))
    data = load_yaml(path)
    changed = apply_overrides(data, ["data.num_frames=32"])
    assert changed["data"]["num_frames"] == 32 and changed["frozen"]["num_frames"] == 8
    assert data["data"]["num_frames"] == 8  # the loaded file itself is not modified either


def test_a_key_given_twice_is_refused_not_silently_replaced(tmp_path):
    path = write(tmp_path, GOOD + "seed: 4\n")
    with pytest.raises(UserError, match=r"exp.yaml:8:1: invalid YAML: duplicate key 'seed' \(first given on line 3\)"):
        load_config(path)


def test_a_merge_key_may_be_overridden_beside_it(plugins, tmp_path):
    # `<<: *defaults` then the key again is how YAML users override a shared block: not a duplicate
    merged = "model: {<<: {name: wide, width: 2}, width: 5}"
    path = write(tmp_path, GOOD.replace("model: {name: wide, width: 2}", merged))
    assert load_config(path).model.as_dict() == {"name": "wide", "width": 5}


def test_interpolation_reads_the_environment_only_through_oc_env(plugins, tmp_path, monkeypatch):
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("FVC_TEST_ROOT", "/scratch/me")
    config = load_config(path, ["output_dir=${oc.env:FVC_TEST_ROOT}/runs", "experiment=e${seed}",
                                "seed=${oc.env:FVC_TEST_UNSET,7}"])
    assert (str(config.output_dir), config.experiment, config.seed) == ("/scratch/me/runs", "e7", 7)
    with pytest.raises(ConfigError) as err:
        load_config(path, ["experiment=${oc.decode:'1'}", "output_dir=${oc.create:{}}", "seed=${nothing}"])
    assert len(err.value.problems) == 3
