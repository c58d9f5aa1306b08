"""The plugin as users meet it: the registry, its config model, light imports, `fvc plugins`."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from fvc_naive_cnn.config import NaiveCNNConfig

from fvc_core.errors import ConfigError


def test_config_defaults_and_validation():
    config = NaiveCNNConfig()
    assert (config.chunk_size, config.num_classes, config.norm_stats, config.layout) == (10, 2, "clip", "auto")
    assert config.compile is False and config.train_memory == "bounded"
    for bad in (
        {"chunk_size": 0},
        {"norm_stats": "batch"},
        {"layout": "nhwc"},
        {"chunk_sise": 5},
        {"dropout": 1.0},
        {"num_classes": 1},
    ):
        with pytest.raises(ValueError):
            NaiveCNNConfig(**bad)


def test_create_model_through_the_registry():
    from fvc_naive_cnn.model import NaiveCNNBaseline

    import fvc_core
    from fvc_core.plugins import get_registry

    model = get_registry().create("models", "naive_cnn", {"chunk_size": 4, "norm_stats": "running"})
    assert isinstance(model, NaiveCNNBaseline)
    assert (model.chunk_size, model.norm_stats) == (4, "running")
    # The seed notebook's way: create_model(name, config) then load a state dict.
    other = fvc_core.create_model("naive_cnn", {"chunk_size": 4})
    other.load_state_dict(model.state_dict())
    x = torch.randint(0, 256, (1, 5, 3, 16, 16), dtype=torch.uint8)
    other.norm_stats = "running"
    with torch.no_grad():
        assert torch.equal(model.eval()(x), other.eval()(x))


def test_a_typo_in_the_config_names_the_key():
    from fvc_core.plugins import get_registry

    with pytest.raises(ConfigError, match="chunk_sise"):
        get_registry().create("models", "naive_cnn", {"chunk_sise": 4})


def test_plugin_and_config_modules_import_no_torch():
    code = (
        "import sys; import fvc_naive_cnn.plugin, fvc_naive_cnn.config; "
        "heavy = [m for m in ('torch', 'av', 'sklearn') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fvc_plugins_lists_the_model():
    fvc = subprocess.run([sys.executable, "-m", "fvc_core.cli", "plugins"], capture_output=True, text=True, check=False)
    assert fvc.returncode == 0, fvc.stderr
    assert "naive_cnn" in fvc.stdout and "fvc-naive-cnn" in fvc.stdout
