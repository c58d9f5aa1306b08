"""The runner's fake plugin distribution (tests/core/fake_plugin.py) and a model plugin's source, for the
core and sweep tests; the `site` they are installed in is tests/conftest.py's."""

from __future__ import annotations

import pytest

MODEL_PLUGIN = '''
from pydantic import BaseModel, ConfigDict, Field
from fvc_core.hookspecs import hookimpl

class Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    width: int = Field(4, ge=1)

@hookimpl
def register_models(register):
    register("{name}", lambda cfg: ("built", cfg.width), config=Cfg)
'''


# The fake distribution's experiment (tests/core/fake_plugin.py): a module may define its own `config`.
RUNNER_CONFIG = """
experiment: e
output_dir: {out}
data: {{name: d}}
model: {{name: m}}
trainer: {{name: t}}
trackers: [recorder]
"""


@pytest.fixture
def events(site):
    """The fake plugins installed; the events their tracker records."""
    from .fake_plugin import install

    return install(site).EVENTS


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(RUNNER_CONFIG.format(out=tmp_path / "out"))
    return path
