"""Evaluation normalises the way training does (norm_stats), one video at a time."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn


def textbook_layers(model, train_bn: bool) -> nn.Sequential:
    """The same layers as plain torch modules: BatchNorm on batch statistics (train) or running ones."""
    m = copy.deepcopy(model)
    seq = nn.Sequential(
        m.conv1,
        m.bn1,
        nn.ReLU(),
        nn.MaxPool2d(2),
        m.conv2,
        m.bn2,
        nn.ReLU(),
        nn.MaxPool2d(2),
        m.conv3,
        m.bn3,
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        m.fc1,
        nn.ReLU(),
        m.fc2,
    )
    return seq.train(train_bn)


def trained(make_model, clips, **kwargs):
    """A model whose running statistics have moved away from their initial values."""
    model = make_model(**kwargs).train()
    with torch.no_grad():
        model(clips(n=2, t=6, seed=9).mul(0.5).to(torch.uint8))  # darker clips: other statistics
    return model.eval()


def reference_scores(model, x, chunk_size, train_bn):
    seq = textbook_layers(model, train_bn)
    out = []
    with torch.no_grad():
        for video in x.float() / 255 * 2 - 1:
            chunks = [seq(video[s : s + chunk_size]) for s in range(0, len(video), chunk_size)]
            out.append(torch.softmax(torch.cat(chunks), 1).mean(0))
    return torch.stack(out)


def test_clip_stats_normalise_each_chunk_like_training_and_leave_running_stats(make_model, clips):
    model = trained(make_model, clips, chunk_size=3)
    before = {n: b.clone() for n, b in model.named_buffers()}
    x = clips(n=2, t=7)
    with torch.no_grad():
        _, frames = model(x, return_frame_logits=True)
    for name, buffer in model.named_buffers():
        assert torch.equal(buffer, before[name]), f"{name} changed in evaluation"
    expected = reference_scores(model, x, chunk_size=3, train_bn=True)
    torch.testing.assert_close(torch.softmax(frames, -1).mean(1), expected, rtol=1e-4, atol=1e-5)


def test_running_stats_are_textbook_batchnorm(make_model, clips):
    model = trained(make_model, clips, chunk_size=3, norm_stats="running")
    x = clips(n=2, t=7)
    with torch.no_grad():
        _, frames = model(x, return_frame_logits=True)
    expected = reference_scores(model, x, chunk_size=3, train_bn=False)
    torch.testing.assert_close(torch.softmax(frames, -1).mean(1), expected, rtol=1e-4, atol=1e-5)
    # ...and not what clip statistics give.
    model.norm_stats = "clip"
    with torch.no_grad():
        assert not torch.allclose(model(x), frames.mean(1), atol=1e-3)


@pytest.mark.parametrize("norm_stats", ["clip", "running"])
@pytest.mark.parametrize("training", [False, True])
def test_a_video_scores_the_same_alone_or_in_any_batch(make_model, clips, norm_stats, training):
    # T = 7 is not a multiple of chunk_size = 3: chunks must still stop at each video's end.
    model = make_model(chunk_size=3, norm_stats=norm_stats, dropout=0.0).train(training)
    x = clips(n=3, t=7)
    with torch.no_grad():
        batch = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(3)])
        reordered = model(x[[2, 0, 1]])
        again = model(x)
    torch.testing.assert_close(batch, alone, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(reordered, batch[[2, 0, 1]], rtol=1e-5, atol=1e-6)
    if not training:  # training updates running statistics, so only evaluation repeats exactly
        assert torch.equal(batch, again)


def test_training_gradients_do_not_mix_videos(make_model, clips):
    """The gradient of video 0's loss is the same whatever video sits beside it in the batch."""
    x = clips(n=2, t=5)
    grads = []
    for partner in (x[1:2], clips(n=1, t=5, seed=3)):
        model = make_model(chunk_size=2, dropout=0.0).train()
        out = model(torch.cat([x[:1], partner]))
        torch.nn.functional.cross_entropy(out[:1], torch.tensor([1])).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)
