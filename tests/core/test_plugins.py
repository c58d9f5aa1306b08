import json
import subprocess
import sys

import pytest

from fvc_core import create_model
from fvc_core.cli import main
from fvc_core.errors import ConfigError, PluginError
from fvc_core.plugins import get_registry
from tests.builders import write_distribution

from .conftest import MODEL_PLUGIN


def test_builtins_register_through_the_same_hooks():
    registry = get_registry()
    console = next(p for p in registry.plugins if p.name == "console")
    assert console.builtin and console.distribution == "fvc-core"
    assert "register_trackers" in console.hooks
    assert "console" in registry.names("trackers")


def test_third_party_model_is_usable_by_name(site):
    write_distribution(site, "fvctest-a", {"fvctest_a": MODEL_PLUGIN.format(name="wide")}, {"a": "fvctest_a"})
    assert create_model("wide", {"width": 7}) == ("built", 7)
    assert create_model("wide") == ("built", 4)
    with pytest.raises(ConfigError, match="width"):
        create_model("wide", {"width": 0})
    with pytest.raises(PluginError, match="did you mean 'wide'"):
        create_model("wdie")


def test_broken_plugin_is_listed_and_the_rest_works(site, capsys):
    write_distribution(site, "fvctest-broken", {"fvctest_broken": "raise RuntimeError('boom at import')"},
                       {"broken": "fvctest_broken"})
    write_distribution(site, "fvctest-a", {"fvctest_a": MODEL_PLUGIN.format(name="wide")}, {"a": "fvctest_a"})
    assert main(["plugins", "--json"]) == 1  # listed, and a script sees that something failed
    listing = json.loads(capsys.readouterr().out)
    by_name = {p["name"]: p for p in listing["plugins"]}
    assert by_name["broken"]["error"] == "RuntimeError: boom at import"
    assert by_name["broken"]["distribution"] == "fvctest-broken"
    assert by_name["a"]["provides"] == {"models": ["wide"]}
    assert by_name["a"]["version"] == "1.2.3"
    assert create_model("wide") == ("built", 4)


def test_plugin_failing_in_its_hook_is_named(site):
    bad = '''
from fvc_core.hookspecs import hookimpl
@hookimpl
def register_models(register):
    raise ValueError("cannot register")
'''
    write_distribution(site, "fvctest-bad", {"fvctest_bad": bad}, {"bad": "fvctest_bad"})
    info = next(p for p in get_registry().plugins if p.name == "bad")
    assert info.error == "ValueError: cannot register"
    with pytest.raises(PluginError, match=r"plugins that failed to load: .*bad \(ValueError: cannot register\)"):
        get_registry().get("models", "whatever")


def test_two_plugins_with_one_name_is_an_error_naming_both(site):
    write_distribution(site, "fvctest-a", {"fvctest_a": MODEL_PLUGIN.format(name="same")}, {"a": "fvctest_a"})
    write_distribution(site, "fvctest-b", {"fvctest_b": MODEL_PLUGIN.format(name="same")}, {"b": "fvctest_b"})
    with pytest.raises(PluginError) as err:
        create_model("same")
    assert "fvctest-a" in str(err.value) and "fvctest-b" in str(err.value)
    # Disabling one of them settles it.
    assert get_registry(["b"]).create("models", "same") == ("built", 4)


def test_disable_with_p_no_name(site, capsys):
    write_distribution(site, "fvctest-a", {"fvctest_a": MODEL_PLUGIN.format(name="wide")}, {"a": "fvctest_a"})
    assert main(["-p", "no:a", "plugins", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert "a" not in {p["name"] for p in listing["plugins"]}
    assert main(["-p", "nope", "plugins"]) == 2
    assert "expected -p no:NAME" in capsys.readouterr().err


def test_example_plugin_pip_installs_and_is_discovered(tmp_path):
    """The worked example under examples/ is a real distribution: pip builds it, entry points find it."""
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), "examples/plugin_tiny_model"],
        check=True,
    )
    code = (
        "import json, fvc_core; from fvc_core.plugins import get_registry; r = get_registry();"
        "p = next(p for p in r.plugins if p.name == 'tiny_cnn');"
        "m = fvc_core.create_model('tiny_cnn', {'width': 5});"
        "import torch; out = m(torch.zeros(2, 3, 3, 16, 16, dtype=torch.uint8));"
        "print(json.dumps([p.distribution, p.provides, list(out.shape), 'torch' in __import__('sys').modules]))"
    )
    env = {**__import__("os").environ, "PYTHONPATH": str(target)}
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
    dist, provides, shape, _ = json.loads(out.stdout)
    assert dist == "fvc-example-tiny"
    assert provides == {"models": ["tiny_cnn"]}
    assert shape == [2, 2]
