"""feature_cache: memory (linear probe): a clip seen again skips the frozen backbone, the classifier trains
exactly as without the cache, any other clip misses, the bound holds, and the cache is never saved."""

from __future__ import annotations

import pytest
import torch
from fvc_timm.model import TimmDetector

from tests.timm_models.test_config import _problems
from tests.timm_models.test_model import _clips


def _counted(model: TimmDetector) -> list[int]:
    """Frames through the backbone's stem, call by call (a forward hook)."""
    calls: list[int] = []
    model.backbone.conv1.register_forward_hook(lambda _m, args, _out: calls.append(len(args[0])))
    return calls


def _probe(cache: str) -> tuple[TimmDetector, list[list[int]], list[float]]:
    """Two epochs of a linear probe on 4 clips, batches of 2 in a new order each epoch; the stem's calls
    per epoch and the losses."""
    torch.manual_seed(0)
    model = TimmDetector("resnet10t", chunk_size=3, freeze="backbone", feature_cache=cache).train()
    calls = _counted(model)
    clips, labels = _clips(4, 4, 32), torch.tensor([0, 1, 1, 0])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    order = torch.Generator().manual_seed(1)
    per_epoch, losses = [], []
    for _ in range(2):
        calls.clear()
        for batch in torch.randperm(4, generator=order).view(2, 2):
            loss = torch.nn.functional.cross_entropy(model(clips[batch]), labels[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        per_epoch.append(list(calls))
    return model, per_epoch, losses


def test_a_second_epoch_skips_the_backbone_and_trains_the_classifier_bit_identically():
    cached, cached_calls, cached_losses = _probe("memory")
    plain, plain_calls, plain_losses = _probe("off")
    assert plain_calls == [[3, 3, 2] * 2] * 2  # 8 frames a batch in chunks of 3, every epoch
    assert cached_calls == [[3, 3, 2] * 2, []]  # epoch 2: every clip seen before, the backbone not called
    assert cached.feature_cache.hits == 4 and len(cached.feature_cache) == 4
    assert cached_losses == plain_losses
    for (name, a), b in zip(cached.state_dict().items(), plain.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    # Never saved: the state (model.pt) has the same tensors with the cache as without.
    assert list(cached.state_dict()) == list(plain.state_dict())


def test_any_other_clip_misses_and_gets_its_own_features():
    torch.manual_seed(0)
    model = TimmDetector("resnet10t", chunk_size=8, freeze="backbone", feature_cache="memory").eval()
    plain = TimmDetector("resnet10t", chunk_size=8, freeze="backbone")
    plain.load_state_dict(model.state_dict())
    plain.eval()
    calls = _counted(model)
    clip = _clips(1, 4, 32)
    one_pixel = clip.clone()
    one_pixel[0, 2, 1, 5, 7] ^= 1  # one channel of one pixel of one frame, off by one
    # Another pixel, frame size, dtype, length, and the same bytes in another shape.
    others = [one_pixel, _clips(1, 4, 64), clip.float() / 255, clip[:, :3], clip.reshape(1, 2, 3, 32, 64)]
    with torch.no_grad():
        model(clip)
        for other in others:
            calls.clear()
            got = model.frame_logits(other)
            assert calls == [other.shape[1]], other.shape  # a miss: the backbone ran on the clip's frames
            assert torch.equal(got, plain.frame_logits(other))
        calls.clear()
        model(clip)
        assert calls == []  # the first clip still hits
        # A batch of a clip seen and one not: each clip its own features.
        new = _clips(1, 4, 32).flip(0, 1)
        mixed = torch.cat([clip, new])
        assert torch.equal(model.frame_logits(mixed), plain.frame_logits(mixed))
        assert calls == [4]
        calls.clear()
        with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed precision: other features, another key
            model(clip)
        assert calls == [4]
    assert len(model.feature_cache) == 3 + len(others)


def test_the_bound_evicts_the_least_recently_used_clips():
    clip_bytes = 4 * 512 * 4  # 4 frames of 512 float32 features (resnet10t's pre-logits)
    torch.manual_seed(0)
    model = TimmDetector("resnet10t", freeze="backbone", feature_cache="memory",
                         feature_cache_mb=2.5 * clip_bytes / 2**20).eval()
    calls = _counted(model)
    a, b, c = (_clips(1, 4, 32) + k for k in range(3))
    with torch.no_grad():
        for clip in (a, b, a, c):  # a used again after b: b is the least recently used when c comes
            model(clip)
        assert len(model.feature_cache) == 2 and model.feature_cache.bytes <= 2.5 * clip_bytes
        calls.clear()
        model(a)
        model(c)
        assert calls == []
        model(b)
        assert calls == [4]  # evicted: computed again


def test_the_cache_needs_a_frozen_backbone(tmp_path):
    assert _problems(tmp_path, "model.feature_cache=memory") == [
        "model: feature_cache: memory needs freeze: backbone (a trained backbone's features change "
        "every step), not freeze: none"]
    assert _problems(tmp_path, "model.feature_cache=memory", "model.freeze=backbone") == []
    with pytest.raises(ValueError, match="feature_cache needs freeze: backbone"):
        TimmDetector("resnet10t", feature_cache="memory")


def test_loading_other_weights_forgets_the_features():
    """A fold's model.pt loaded into the model (fvc predict, evaluate): features of the old backbone go."""
    torch.manual_seed(0)
    model = TimmDetector("resnet10t", freeze="backbone", feature_cache="memory").eval()
    other = TimmDetector("resnet10t", freeze="backbone").eval()
    clip = _clips(1, 4, 32)
    with torch.no_grad():
        model(clip)
        model.load_state_dict(other.state_dict())
        assert torch.equal(model.frame_logits(clip), other.frame_logits(clip))


def test_fvc_run_with_the_cache_gives_the_run_without_it(tmp_path, video_table):
    """Real videos through `fvc run`, 2 epochs of a linear probe (no augmentation: data.augment's default):
    every fold's model.pt and predictions are those of the same run without the cache, bit for bit."""
    import polars as pl

    from fvc_core.cli import main
    from tests.timm_models.conftest import experiment

    runs = []
    for cache in ("off", "memory"):
        folder = tmp_path / cache
        folder.mkdir()
        model = {"name": "timm", "arch": "resnet10t", "freeze": "backbone", "chunk_size": 3, "feature_cache": cache}
        assert main(["run", str(experiment(folder, video_table, model, epochs=2, lr=1e-2))]) == 0
        runs.append(folder / "runs" / "timm")
    for k in (0, 1):
        off, on = (torch.load(run / f"fold_{k}" / "model.pt", weights_only=True)["model_state_dict"] for run in runs)
        assert list(off) == list(on)  # nothing of the cache saved
        assert all(torch.equal(off[name], on[name]) for name in off)
        scores = [pl.read_parquet(run / f"fold_{k}" / "predictions.parquet")["score"] for run in runs]
        assert scores[0].to_list() == scores[1].to_list()


def test_fvc_explain_draws_maps_through_the_backbone_not_the_cache():
    from fvc_report.explain import frame_scores_and_cams

    torch.manual_seed(0)
    model = TimmDetector("resnet10t", freeze="backbone", feature_cache="memory").eval()
    clip = _clips(1, 3, 64)
    with torch.no_grad():
        model(clip)  # cached: explain must still see the feature maps
    scores, cams = frame_scores_and_cams(model, clip)
    assert cams is not None and cams.shape == (3, 2, 2)


def test_a_head_that_is_not_a_classifier_on_pre_logits_is_refused_in_one_line():
    """An architecture whose logits are not its classifier on its pre-logits features: never other logits."""
    from fvc_core.contract import UserError

    model = TimmDetector("resnet10t", freeze="backbone", feature_cache="memory").eval()
    head = model.backbone.forward_head
    model.backbone.forward_head = lambda f, pre_logits=False: head(f, pre_logits) if pre_logits else head(f) + 1
    with torch.no_grad(), pytest.raises(UserError, match=r"^model.feature_cache: timm resnet10t: its head is not "):
        model(_clips(1, 2, 32))
