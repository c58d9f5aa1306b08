"""What a timm model needs is checked against data: before anything runs, and every mistake about its
weights is one line naming the key and the file."""

from __future__ import annotations

import pytest
import torch

from fvc_core.config import load_config
from fvc_core.errors import ConfigError, UserError

CONFIG = """
output_dir: out
data: {name: metadata, metadata: t.parquet, num_frames: 32, size: 299}
model: {name: xception}
trackers: []
"""


def _problems(tmp_path, *overrides: str) -> list[str]:
    path = tmp_path / "exp.yaml"
    path.write_text(CONFIG)
    try:
        load_config(path, list(overrides))
    except ConfigError as err:
        return err.problems
    return []


def test_the_named_baselines_declare_their_published_input_size(tmp_path):
    assert _problems(tmp_path) == []
    assert _problems(tmp_path, "model={name: efficientnet_b4}") == [
        "model.name: 'efficientnet_b4' needs 380 x 380 frames; data.size gives 299 x 299"]
    assert _problems(tmp_path, "model={name: clip_vit_b16}", "data.size=224") == []
    assert _problems(tmp_path, "model={name: clip_vit_b16}") == [
        "model.name: 'clip_vit_b16' needs 224 x 224 frames; data.size gives 299 x 299"]
    # img_size builds the network for another size; data.size must still agree with it.
    assert _problems(tmp_path, "model.img_size=256") == [
        "model.name: 'xception' needs 256 x 256 frames; data.size gives 299 x 299"]


def test_any_timm_arch_by_name_with_its_own_input_needs(tmp_path):
    # A CNN takes any size; a vision transformer is built for its published one unless img_size says.
    assert _problems(tmp_path, "model={name: timm, arch: resnet10t}") == []
    assert _problems(tmp_path, "model={name: timm, arch: vit_tiny_patch16_224}") == [
        "model.name: 'timm' needs 224 x 224 frames; data.size gives 299 x 299"]
    assert _problems(tmp_path, "model={name: timm, arch: vit_tiny_patch16_224, img_size: 299}") == []
    [line] = _problems(tmp_path, "model={name: timm, arch: efficientnet_b44}")
    assert line.startswith("model.arch: ") and "timm has no architecture 'efficientnet_b44'" in line
    assert "did you mean 'efficientnet_b4'" in line
    [line] = _problems(tmp_path, "model.weights=w.pt", "model.pretrained=cache")
    assert "weights and pretrained: cache both say where the weights come from" in line


def test_weights_that_do_not_fit_or_would_run_code_are_one_line(tmp_path):
    from fvc_timm.model import TimmDetector
    from fvc_timm.timm_import import import_timm

    torch.save(import_timm().create_model("resnet18").state_dict(), tmp_path / "resnet18.pt")
    with pytest.raises(UserError, match=r"^model.weights: .*resnet18.pt: does not fit resnet10t: .* of another "
                       r"shape .*; \d+ unknown"):
        TimmDetector("resnet10t", weights=tmp_path / "resnet18.pt").train()
    torch.save({"weights": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")  # a module: needs pickle to load
    with pytest.raises(UserError, match="pickled.pt: not a state dict that loads safely") as refused:
        TimmDetector("resnet10t", weights=tmp_path / "pickled.pt").train()
    # torch's own message opens by suggesting weights_only=False: the user gets the reason, not that advice.
    assert "refused it: Unsupported global: GLOBAL torch.nn.modules.linear.Linear" in str(refused.value)
    assert "weights_only=False" not in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(UserError, match="model.weights: .*nowhere.safetensors: no such file"):
        TimmDetector("resnet10t", weights=tmp_path / "nowhere.safetensors").train()
    (tmp_path / "junk.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(UserError, match="junk.safetensors: not a state dict that loads safely"):
        TimmDetector("resnet10t", weights=tmp_path / "junk.safetensors").train()


def test_published_weights_come_from_the_cache_only_unless_download_is_asked(tmp_path, monkeypatch):
    """pretrained: cache never reaches the network: absent from the caches, one line at once."""
    from fvc_timm.model import TimmDetector

    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    import huggingface_hub.constants as constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(UserError, match=r"model.pretrained: cache: resnet10t's published weights are not in this "
                       r"machine's caches \(from hf://timm/resnet10t.c3_in1k or https://"):
        TimmDetector("resnet10t", pretrained="cache").train()
    # What a download of timm's left in the torch hub cache is found there and used.
    from fvc_timm.timm_import import import_timm

    net = import_timm().create_model("legacy_xception", num_classes=1000)
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(net.state_dict(), cache / "xception-43020ad28.pth")
    model = TimmDetector("legacy_xception", pretrained="cache").train()
    assert model.backbone_pretrained and torch.equal(model.backbone.conv1.weight, net.conv1.weight)


def test_a_download_that_gets_no_answer_is_one_line_in_seconds_not_a_hang(tmp_path, monkeypatch):
    """pretrained: download against a hub that never answers (a loopback socket that accepts nothing): the
    network timeouts end it, in one line naming the key."""
    import socket
    import time

    import huggingface_hub.constants as constants
    from fvc_timm.model import TimmDetector

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}")
        monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
        monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1")
        monkeypatch.setenv("HF_HUB_DOWNLOAD_TIMEOUT", "1")
        start = time.monotonic()
        with pytest.raises(UserError, match=r"^model.pretrained: download: cannot reach http://127.0.0.1:\d+ "
                           r"\(.*timed out\); without a network, give a local file as model.weights") as err:
            TimmDetector("resnet10t", pretrained="download").train()
        assert "\n" not in str(err.value)
        assert time.monotonic() - start < 30
    finally:
        silent.close()
