"""A model says what it needs (issue 24): a dataset whose clips miss it is a config error from
`fvc check` and `fvc run`, before anything is built or written."""

from __future__ import annotations

import pytest

from fvc_core.cli import main
from fvc_core.config import load_config
from fvc_core.errors import ConfigError
from tests.builders import write_distribution

pytest.importorskip("fvc_loaders")
pytest.importorskip("fvc_naive_cnn")

TEMPORAL = '''
from pydantic import BaseModel, ConfigDict
from fvc_core.contract import hookimpl
from fvc_core.contract import ModelInput

class Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clip: int = 8

    def model_input(self):
        return ModelInput(min_frames=self.clip, frames_multiple_of=self.clip, size=112, sampler="window", fps=25)

class Plain(BaseModel):
    model_config = ConfigDict(extra="forbid")

@hookimpl
def register_models(register):
    register("temporal", lambda cfg: None, config=Cfg)
    register("anything", lambda cfg: None, config=Plain)
'''

CONFIG = """
output_dir: out
data: {name: metadata, metadata: none.parquet, num_frames: 6, size: 64}
model: {name: naive_cnn}
trackers: []
"""


@pytest.fixture
def temporal(site):
    write_distribution(site, "fvctest-temporal", {"fvctest_temporal": TEMPORAL}, {"temporal": "fvctest_temporal"})
    return site


def test_every_way_the_clips_miss_the_model_is_listed_at_once(temporal, tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(CONFIG)
    with pytest.raises(ConfigError) as err:
        load_config(path, ["model={name: temporal}"])
    assert err.value.problems == [
        "model.name: 'temporal' needs at least 8 frames a clip; data.num_frames gives 6",
        "model.name: 'temporal' needs a multiple of 8 frames a clip; data.num_frames gives 6",
        "model.name: 'temporal' needs 112 x 112 frames; data.size gives 64 x 64",
        "model.name: 'temporal' needs consecutive frames (data.sampler: window); data.sampler is uniform "
        "(frames spread over the whole video)",
    ]
    assert load_config(path, ["model={name: anything}"]).model.name == "anything"  # declares nothing


def test_naive_cnn_declares_its_layout_and_smallest_frames(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(CONFIG)
    assert load_config(path).model.name == "naive_cnn"
    with pytest.raises(ConfigError, match=r"'naive_cnn' reads ncthw batches; trainers give \(N, T, C, H, W\)"):
        load_config(path, ["model.layout=ncthw"])
    # fvc check and fvc run stop on it before anything is built or written.
    for command in ("check", "run"):
        assert main([command, str(path), "data.size=8", "model.layout=ncthw"]) == 2
        err = capsys.readouterr().err
        assert err == f"error: {path}: model.name: 'naive_cnn' reads ncthw batches; trainers give (N, T, C, H, W) " \
                      "ones (ntchw)\n"
    assert not (tmp_path / "out").exists()
