"""The architecture, initialisation, input layouts and what forward returns."""

from __future__ import annotations

import pytest
import torch
from fvc_naive_cnn.clips import ClipShapeError
from torch import nn

from fvc_core.errors import UserError

SPEC_LAYERS = [
    ("conv1", nn.Conv2d),
    ("bn1", nn.BatchNorm2d),
    ("relu1", nn.ReLU),
    ("pool1", nn.MaxPool2d),
    ("conv2", nn.Conv2d),
    ("bn2", nn.BatchNorm2d),
    ("relu2", nn.ReLU),
    ("pool2", nn.MaxPool2d),
    ("conv3", nn.Conv2d),
    ("bn3", nn.BatchNorm2d),
    ("relu3", nn.ReLU),
    ("pool", nn.AdaptiveAvgPool2d),
    ("fc1", nn.Linear),
    ("relu4", nn.ReLU),
    ("dropout", nn.Dropout),
    ("fc2", nn.Linear),
]


def test_layers_and_parameter_count(make_model):
    model = make_model()
    assert [(name, type(m)) for name, m in model.named_children()] == SPEC_LAYERS
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes["conv1.weight"] == (32, 3, 3, 3)
    assert shapes["conv2.weight"] == (64, 32, 3, 3)
    assert shapes["conv3.weight"] == (128, 64, 3, 3)
    assert shapes["fc1.weight"] == (64, 128)
    assert shapes["fc2.weight"] == (2, 64)
    assert model.conv1.padding == (1, 1) and model.pool1.kernel_size == 2
    assert model.dropout.p == 0.5
    # conv 896 + 18,496 + 73,856; BN 64 + 128 + 256; linear 8,256 + 130
    assert sum(p.numel() for p in model.parameters()) == 102_082


def test_he_initialisation(make_model):
    model = make_model()
    for bn in (model.bn1, model.bn2, model.bn3):
        assert torch.equal(bn.weight, torch.ones_like(bn.weight))
        assert torch.equal(bn.bias, torch.zeros_like(bn.bias))
    # Kaiming normal for ReLU: std sqrt(2 / fan), fan_out for convs, fan_in for linear layers.
    for layer, fan in ((model.conv2, 64 * 9), (model.conv3, 128 * 9), (model.fc1, 128)):
        assert layer.weight.std().item() == pytest.approx((2 / fan) ** 0.5, rel=0.1)
        assert torch.equal(layer.bias, torch.zeros_like(layer.bias))


def test_parameter_groups_put_everything_in_the_head(make_model):
    groups = make_model().parameter_groups()
    assert groups["backbone"] == []
    assert len(groups["head"]) == 16


def test_video_logits_are_the_mean_of_frame_logits(make_model, clips):
    model = make_model().eval()
    x = clips(n=2, t=7)
    with torch.no_grad():
        video, frames = model(x, return_frame_logits=True)
    assert video.shape == (2, 2) and frames.shape == (2, 7, 2)
    assert torch.allclose(video, frames.mean(1))
    assert torch.allclose(model.frame_logits(x), frames)
    # Centred: softmax-equivalent to raw logits, each row sums to zero.
    assert torch.allclose(frames.sum(-1), torch.zeros(2, 7), atol=1e-6)


def test_chunk_size_one_and_larger_than_the_clip(make_model, clips):
    x = clips(n=1, t=5)
    for chunk_size in (1, 2, 5, 50):
        with torch.no_grad():
            out = make_model(chunk_size=chunk_size).eval()(x)
        assert out.shape == (1, 2) and torch.isfinite(out).all()


def test_layouts_give_the_same_scores(make_model, clips):
    x = clips(n=2, t=5)  # (N, T, C, H, W)
    with torch.no_grad():
        ntchw = make_model(layout="ntchw").eval()(x)
        ncthw = make_model(layout="ncthw").eval()(x.transpose(1, 2))
        auto_a = make_model().eval()(x)
        auto_b = make_model().eval()(x.transpose(1, 2).contiguous())
    assert torch.equal(ntchw, ncthw)
    assert torch.equal(ntchw, auto_a)
    assert torch.equal(ntchw, auto_b)


def test_uint8_and_float_in_0_1_score_alike(make_model, clips):
    x = clips(n=1, t=4)
    model = make_model().eval()
    with torch.no_grad():
        assert torch.allclose(model(x), model(x.float() / 255), atol=1e-5)
        assert torch.allclose(model(x), model(x.double() / 255), atol=1e-5)


def test_float_input_is_not_modified(make_model, clips):
    x = clips(n=1, t=4).float() / 255
    before = x.clone()
    with torch.no_grad():
        make_model().eval()(x)
    assert torch.equal(x, before)


def test_ambiguous_shape_names_both_layouts(make_model):
    x = torch.zeros(1, 3, 3, 16, 16, dtype=torch.uint8)
    with pytest.raises(ClipShapeError, match=r"ambiguous.*ntchw, ncthw.*model.layout"):
        make_model()(x)
    # An explicit layout resolves it.
    assert make_model(layout="ntchw").eval()(x).shape == (1, 2)


def test_impossible_shapes_are_clear_errors(make_model):
    model = make_model()
    with pytest.raises(ClipShapeError, match=r"no layout fits shape \(1, 4, 5, 16, 16\)"):
        model(torch.zeros(1, 4, 5, 16, 16))
    with pytest.raises(ClipShapeError, match=r"add a batch dimension"):
        model(torch.zeros(8, 3, 16, 16))
    with pytest.raises(ClipShapeError, match=r"layout ntchw expects 3 channels at dim 2.*fit: ncthw"):
        make_model(layout="ntchw")(torch.zeros(1, 3, 8, 16, 16))
    with pytest.raises(ClipShapeError, match=r"uint8 \(0-255\) or float"):
        model(torch.zeros(1, 8, 3, 16, 16, dtype=torch.int64))
    with pytest.raises(ClipShapeError, match=r"too small"):
        model(torch.zeros(1, 8, 3, 2, 2))
    # One line a user can act on, and both a UserError (exit code 2) and a ValueError.
    assert issubclass(ClipShapeError, UserError) and issubclass(ClipShapeError, ValueError)


def test_bad_constructor_arguments():
    from fvc_naive_cnn.model import NaiveCNNBaseline

    with pytest.raises(ValueError, match="chunk_size"):
        NaiveCNNBaseline(chunk_size=0)
    with pytest.raises(ValueError, match="norm_stats"):
        NaiveCNNBaseline(norm_stats="batch")


def test_state_dict_round_trip_with_weights_only(make_model, clips, tmp_path):
    model = make_model(seed=1).eval()
    torch.save({"model_state_dict": model.state_dict()}, tmp_path / "model.pt")
    other = make_model(seed=2).eval()
    other.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True)["model_state_dict"])
    x = clips(n=1, t=4)
    with torch.no_grad():
        assert torch.equal(model(x), other(x))
