"""docs/models.md's model plugin on top of fvc-timm, installed as a distribution and trained by `fvc run`:
a named model in a few lines, with its input contract, weights and frame scores from fvc-timm."""

from __future__ import annotations

import json
import re
import sys

import pytest

from fvc_core.cli import main
from fvc_core.config import load_config
from fvc_core.errors import ConfigError
from fvc_core.plugins import DISABLE_ENV, clear_cache
from tests.builders import write_distribution
from tests.conftest import REPO
from tests.timm_models.conftest import experiment


def _documented_plugin() -> str:
    text = (REPO / "docs" / "models.md").read_text()
    section = text.split("## A model plugin on top of this one", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


@pytest.fixture
def face_resnet(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    write_distribution(site, "fvctest-face-resnet", {"fvctest_face_resnet": _documented_plugin()},
                       {"face_resnet_plugin": "fvctest_face_resnet"})
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv(DISABLE_ENV, "")
    clear_cache()
    yield
    clear_cache()
    sys.modules.pop("fvctest_face_resnet", None)


def test_the_documented_plugin_adds_a_named_timm_model(tmp_path, video_table, face_resnet):
    exp = experiment(tmp_path, video_table, {"name": "face_resnet"})
    # Its declared 64 px against the 32 px clips: refused before anything runs.
    with pytest.raises(ConfigError) as err:
        load_config(exp)
    assert err.value.problems == ["model.name: 'face_resnet' needs 64 x 64 frames; data.size gives 32 x 32"]
    assert main(["run", str(exp), "model.img_size=32"]) == 0
    metrics = json.loads((tmp_path / "runs" / "face_resnet" / "fold_0" / "metrics.json").read_text())
    assert metrics["n_frames"] == 16 and metrics["frame_roc_auc"] is not None
