"""Every kind a plugin registers is a declared hook, collected by one code path, and a plugin may
declare hooks of its own (``fvc_addhooks``, as pytest's ``pytest_addhooks``)."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from fvc_core import hookspecs
from fvc_core.cli import main
from fvc_core.contract import plugin_hooks, registered
from fvc_core.plugins import DISABLE_ENV, get_registry
from tests.builders import write_distribution

# Declares a kind of its own (widgets) and a hook of its own (greeting), and registers one widget.
WIDGET_SPECS = '''
from fvc_core.contract import hookspec

@hookspec
def register_widgets(register):
    """Widgets, by name."""

@hookspec(firstresult=True)
def greeting(name):
    """A greeting for ``name``."""
'''

WIDGETS = '''
from fvc_core.contract import hookimpl

@hookimpl
def fvc_addhooks(pluginmanager):
    import fvctest_widget_specs
    pluginmanager.add_hookspecs(fvctest_widget_specs)

@hookimpl
def register_widgets(register):
    register("cog", lambda: "a cog", description="the declaring plugin's own widget")
'''

# Another distribution: implements the widgets plugin's hooks without importing it, and provides a
# layout, a decoder and a face detector through the core's declared hooks.
GADGETS = '''
import numpy as np
from fvc_core.contract import hookimpl

PLANNED = []

class Decoder:
    name = "gadget"

    def read(self, path, plan, size):
        times = np.ravel(plan())  # the target times on the loaders' reference timeline
        PLANNED.append(times.tolist())
        return [np.zeros((size, size, 3), np.uint8) for _ in times]

class Detector:
    name, version = "gadget", "1"

    def detect(self, frame):
        return []

@hookimpl
def register_widgets(register):
    register("sprocket", lambda: "a sprocket", description="from another distribution")

@hookimpl
def greeting(name):
    return f"hello {name}, from gadgets"

@hookimpl
def register_layouts(register):
    register("gadget-layout", lambda root: ([], []), description="a layout")

@hookimpl
def register_decoders(register):
    register("gadget", Decoder, description="a decoder")

@hookimpl
def register_face_detectors(register):
    register("gadget", Detector, description="a face detector")
'''


@pytest.fixture
def plugins(site, monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "")
    # The implementing distribution first: its hooks wait, unverified, for the spec declared after them.
    write_distribution(site, "fvctest-gadgets", {"fvctest_gadgets": GADGETS}, {"gadgets": "fvctest_gadgets"})
    write_distribution(site, "fvctest-widgets", {"fvctest_widgets": WIDGETS, "fvctest_widget_specs": WIDGET_SPECS},
                       {"widgets": "fvctest_widgets"})
    yield site
    decoders = sys.modules.get("fvc_loaders.decoders")
    if decoders is not None:
        decoders._BUILT.pop("gadget", None)


def test_the_core_declares_every_kind_its_plugins_register():
    for kind in ("datasets", "models", "trainers", "trackers", "executors", "layouts", "decoders",
                 "face_detectors"):
        assert callable(getattr(hookspecs, f"register_{kind}")), kind
    assert {"layouts", "decoders", "face_detectors"} <= set(get_registry().kinds)


def test_a_plugin_declares_a_kind_and_a_hook_that_another_distribution_implements(plugins, capsys):
    registry = get_registry()
    assert [p.error for p in registry.plugins if p.name in ("widgets", "gadgets")] == [None, None]
    assert "widgets" in registry.kinds
    found, conflicts = registered("widgets")
    assert {name: entry.plugin for name, entry in found.items()} == {"cog": "widgets", "sprocket": "gadgets"}
    assert found["sprocket"].value() == "a sprocket" and conflicts == {}
    assert plugin_hooks().greeting(name="Ada") == "hello Ada, from gadgets"

    capsys.readouterr()
    assert main(["plugins", "--json"]) in (0, 1)
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)["plugins"]}
    assert listed["gadgets"]["provides"]["widgets"] == ["sprocket"]
    assert listed["gadgets"]["provides"]["face_detectors"] == ["gadget"]


def test_without_the_declaring_plugin_its_kind_is_not_collected_and_the_other_still_loads(plugins, monkeypatch):
    monkeypatch.setenv(DISABLE_ENV, "widgets")
    registry = get_registry()
    assert "widgets" not in registry.kinds
    assert registered("widgets") == ({}, {})
    assert [p.error for p in registry.plugins if p.name == "gadgets"] == [None]
    assert "gadget" in registered("decoders")[0]


def test_a_layout_a_decoder_and_a_face_detector_of_another_distribution_are_found(plugins, tmp_path):
    pytest.importorskip("fvc_loaders")
    from fvc_loaders.decoders import available_decoders, get_decoder
    from fvc_loaders.layouts import available_layouts, get_layout
    from fvc_loaders.reader import timeline

    from tests.loaders.videos import make_video

    assert available_layouts()["gadget-layout"].plugin == "gadgets"
    assert get_layout("gadget-layout").read(tmp_path) == ([], [])
    assert available_decoders()["gadget"].plugin == "gadgets"

    # The decoder plans on the PyAV reader's timeline without importing the loaders: plan().
    video = make_video(tmp_path / "clip.mp4", frames=12, fps=24)
    pictures = get_decoder("gadget").read(video, lambda tl: np.array([tl.start, tl.start + tl.duration]), 16)
    reference = timeline(video)
    assert sys.modules["fvctest_gadgets"].PLANNED == [[reference.start, reference.start + reference.duration]]
    assert len(pictures) == 2

    pytest.importorskip("fvc_faces")
    from fvc_faces.detectors import available_detectors, build_detector

    assert available_detectors()["gadget"].plugin == "gadgets"
    assert build_detector("gadget").version == "1"
