"""Throw-away plugin distributions: real dist-info metadata on sys.path, found through entry points."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from fvc_core.plugins import clear_cache


def write_distribution(site: Path, dist: str, modules: dict[str, str], entry_points: dict[str, str]) -> None:
    """A minimal installed distribution: its modules and a .dist-info with entry_points.txt."""
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n")
    eps = "[fvc]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(eps)


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path for fake distributions; the registry is rebuilt around the test."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    clear_cache()
    yield path
    clear_cache()
    for mod in [m for m in sys.modules if m.startswith("fvctest_")]:
        del sys.modules[mod]


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
