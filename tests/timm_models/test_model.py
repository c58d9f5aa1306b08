"""TimmDetector's chunked forward: bounded memory without changing a number, a frozen backbone computed
once and never changed, Grad-CAM maps for CNNs and vision transformers alike."""

from __future__ import annotations

import copy

import pytest
import torch
from fvc_timm.model import TimmDetector


def _clips(n: int = 2, frames: int = 4, size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (n, frames, 3, size, size), generator=torch.Generator().manual_seed(0),
                         dtype=torch.uint8)


@pytest.mark.parametrize(("arch", "kwargs"), [("resnet10t", {}), ("mobilenetv3_small_050", {"drop_rate": 0.5}),
                                              ("vit_tiny_patch16_224", {"img_size": 32, "drop_rate": 0.5})])
def test_bounded_training_gives_the_gradients_and_running_statistics_of_unbounded(arch, kwargs):
    torch.manual_seed(0)
    bounded = TimmDetector(arch, chunk_size=3, **kwargs).train()
    unbounded = copy.deepcopy(bounded)
    unbounded.train_memory = "unbounded"
    x, y = _clips(), torch.tensor([0, 1])
    for model in (bounded, unbounded):
        torch.manual_seed(1)  # the same dropout masks: the recomputation must replay them
        torch.nn.functional.cross_entropy(model(x), y).backward()
    for (name, a), b in zip(bounded.named_parameters(), unbounded.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6), name
    # Each chunk counted once in BatchNorm's running statistics, not again when recomputed in backward.
    for a, b in zip(bounded.buffers(), unbounded.buffers(), strict=True):
        assert torch.equal(a, b)


def _saved_bytes(model: TimmDetector, frames: int) -> int:
    """Bytes autograd keeps for the backward pass of one training step's forward."""
    total = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(_clips(1, frames))
    return total


def test_training_memory_is_flat_in_the_number_of_frames():
    torch.manual_seed(0)
    model = TimmDetector("resnet10t", chunk_size=2).train()
    for frames in (4, 32):
        # Bounded: the uint8 frames themselves (the clip is in memory anyway) and a few bytes a chunk.
        assert _saved_bytes(model, frames) <= _clips(1, frames).numel() + 64 * frames // 2
    model.train_memory = "unbounded"
    # The reference keeps every chunk's activations: float32 maps many times the clip, growing with T.
    assert _saved_bytes(model, 32) >= 7 * _saved_bytes(model, 4) > 7 * 100 * _clips(1, 4).numel()


def test_a_frozen_backbone_is_computed_once_a_chunk_and_never_changes():
    torch.manual_seed(0)
    model = TimmDetector("resnet10t", chunk_size=2, freeze="backbone").train()
    assert not model.backbone.training  # BatchNorm statistics frozen too
    calls = []
    forward_features = model.backbone.forward_features
    model.backbone.forward_features = lambda x: calls.append(len(x)) or forward_features(x)
    before = copy.deepcopy(model.backbone.state_dict())
    head = model.parameter_groups()["head"]
    assert [p.shape for p in head] == [(2, 512), (2,)] and all(p.requires_grad for p in head)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)
    torch.nn.functional.cross_entropy(model(_clips(2, 4)), torch.tensor([0, 1])).backward()
    opt.step()
    assert calls == [2, 2, 2, 2]  # 8 frames, chunks of 2, none recomputed in backward
    after = model.backbone.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed == ["fc.weight", "fc.bias"]


@pytest.mark.parametrize(("arch", "kwargs", "grid"), [
    ("resnet10t", {}, 2),  # 64 px / 32: the last feature map is 2 x 2
    ("mobilenetv3_small_050", {"img_size": None}, 2),
    ("vit_tiny_patch16_224", {"img_size": 64}, 4),  # 64 px in 16-pixel patches: a 4 x 4 grid of tokens
    ("swin_tiny_patch4_window7_224", {"img_size": 64}, 2),  # channels-last (NHWC) feature maps
])
@pytest.mark.parametrize("freeze", ["none", "backbone"])
def test_grad_cam_gives_one_map_per_frame_for_cnns_and_transformers(arch, kwargs, grid, freeze):
    from fvc_report.explain import frame_scores_and_cams

    torch.manual_seed(0)
    model = TimmDetector(arch, chunk_size=3, freeze=freeze, **kwargs).eval()
    with torch.no_grad():  # a head that reads every feature as evidence of a fake: a map is never all zeros
        weight = model.backbone.get_classifier().weight
        weight[1].abs_()
        weight[0] = -weight[1]
    size = 64
    scores, cams = frame_scores_and_cams(model, _clips(1, 5, size))
    assert scores.shape == (5,)
    assert cams is not None and cams.shape == (5, grid, grid)
    assert (cams >= 0).all() and (cams <= 1).all() and cams.max() == 1  # maps, not zeros
    # The map is the model's own computation: the scores are those of a plain pass.
    with torch.no_grad():
        plain = torch.softmax(model.frame_logits(_clips(1, 5, size))[0], -1)[:, 1].numpy()
    assert abs(plain - scores).max() < 1e-5
