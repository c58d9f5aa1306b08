"""Memory-bounded training gives the gradients and BatchNorm statistics of the plain computation."""

from __future__ import annotations

import weakref

import pytest
import torch
import torch.nn.functional as F

MODES = ("bounded", "recompute")


def step(model, x, labels, *, seed=7, loss="video", weight=None):
    """One training step's gradients and the BatchNorm buffers it leaves."""
    model.train()
    model.zero_grad(set_to_none=True)
    torch.manual_seed(seed)  # the same dropout masks in every mode
    if loss == "video":
        F.cross_entropy(model(x), labels, weight=weight).backward()
    elif loss == "frames":
        _, frames = model(x, return_frame_logits=True)
        t = frames.shape[1]
        F.cross_entropy(frames.reshape(-1, 2), labels.repeat_interleave(t), reduction="sum").backward()
    elif loss == "not_shift_invariant":
        # MSE on the logits changes when a constant is added to them.
        (model(x) - labels[:, None].float()).pow(2).sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return grads, buffers


def assert_same(a, b, rtol=1e-4, atol=1e-6):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=rtol, atol=atol, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("loss", ["video", "frames", "not_shift_invariant"])
def test_gradients_and_running_stats_match_the_plain_step(make_model, clips, mode, loss):
    # Two videos whose 7 frames are not a multiple of chunk_size 3: chunks 3+3+1 in each video.
    x, labels = clips(n=2, t=7), torch.tensor([0, 1])
    plain_grads, plain_buffers = step(make_model(train_memory="unbounded", chunk_size=3), x, labels, loss=loss)
    grads, buffers = step(make_model(train_memory=mode, chunk_size=3), x, labels, loss=loss)
    assert_same(grads, plain_grads)
    # Updated once per chunk, not a second time by a recomputation.
    assert buffers["bn1.num_batches_tracked"].item() == 6
    assert_same(buffers, plain_buffers, rtol=0, atol=0)


@pytest.mark.parametrize("mode", MODES)
def test_running_stats_updated_once_whatever_norm_stats(make_model, clips, mode):
    x, labels = clips(n=1, t=5), torch.tensor([1])
    _, plain = step(make_model(train_memory="unbounded", chunk_size=2, norm_stats="running"), x, labels)
    _, buffers = step(make_model(train_memory=mode, chunk_size=2, norm_stats="running"), x, labels)
    assert buffers["bn2.num_batches_tracked"].item() == 3
    assert_same(buffers, plain, rtol=0, atol=0)


def test_class_weighted_loss_and_several_classes(make_model, clips):
    x, labels = clips(n=3, t=5), torch.tensor([0, 2, 1])
    weight = torch.tensor([0.2, 1.0, 3.0])
    plain = step(make_model(train_memory="unbounded", num_classes=3, chunk_size=2), x, labels, weight=weight)
    for mode in MODES:
        grads, buffers = step(make_model(train_memory=mode, num_classes=3, chunk_size=2), x, labels, weight=weight)
        assert_same(grads, plain[0])
        assert_same(buffers, plain[1], rtol=0, atol=0)


def test_input_gradient_with_recomputation(make_model, clips):
    x = (clips(n=1, t=5).float() / 255).requires_grad_(True)
    labels = torch.tensor([1])
    grads = []
    for mode in ("unbounded", "bounded"):  # bounded hands an input needing a gradient to recompute
        model = make_model(train_memory=mode, chunk_size=2).train()
        x.grad = None
        torch.manual_seed(3)
        F.cross_entropy(model(x), labels).backward()
        grads.append(x.grad.clone())
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-7)


def test_repeated_steps_train_the_same_weights(make_model, clips):
    """A few optimiser steps in each mode land on the same weights (nothing drifts)."""
    x, labels = clips(n=1, t=6, seed=4), torch.tensor([1])
    results = {}
    for mode in ("unbounded", "bounded", "recompute"):
        model = make_model(seed=5, train_memory=mode, chunk_size=4).train()
        # SGD, not Adam: Adam rescales the conv biases' gradients, which BatchNorm makes zero up to
        # rounding noise, into full-size steps in random directions.
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        torch.manual_seed(11)
        for _ in range(3):
            opt.zero_grad()
            F.cross_entropy(model(x), labels).backward()
            opt.step()
        results[mode] = dict(model.state_dict())
    assert_same(results["bounded"], results["unbounded"], rtol=1e-4, atol=1e-5)
    assert_same(results["recompute"], results["unbounded"], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_autocast_bfloat16(make_model, clips, mode):
    x, labels = clips(n=1, t=6), torch.tensor([1])
    grads = {}
    for memory in ("unbounded", mode):
        model = make_model(train_memory=memory, chunk_size=4).train()
        torch.manual_seed(2)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(x)
        assert out.dtype == torch.float32
        F.cross_entropy(out, labels).backward()
        grads[memory] = {n: p.grad for n, p in model.named_parameters()}
    # bf16 arithmetic (3 significant digits) in a different order: compare each tensor as a whole.
    for name, plain in grads["unbounded"].items():
        if name.startswith("conv") and name.endswith("bias"):
            continue  # zero up to rounding: BatchNorm follows
        error = (grads[mode][name] - plain).norm() / plain.norm()
        assert error < 0.03, name


class SavedBytes:
    """Bytes autograd holds for backward, live at once, across a whole training step."""

    def __init__(self):
        self.live = 0
        self.peak = 0

    def _release(self, nbytes):
        self.live -= nbytes

    def pack(self, t):
        nbytes = t.untyped_storage().nbytes()
        self.live += nbytes
        self.peak = max(self.peak, self.live)
        holder = [t]
        weakref.finalize(holder_box := _Box(holder), self._release, nbytes)
        return holder_box

    @staticmethod
    def unpack(box):
        return box.value[0]


class _Box:
    def __init__(self, value):
        self.value = value


def saved_peak(model, x, training=True):
    counter = SavedBytes()
    model.train(training)
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, counter.unpack):
        F.cross_entropy(model(x), torch.tensor([1])).backward()
    return counter.peak


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("norm_stats", "training"), [("clip", True), ("clip", False), ("running", False)])
def test_activation_memory_does_not_grow_with_clip_length(make_model, clips, mode, norm_stats, training):
    """Training, and gradients taken in evaluation (saliency) with either BatchNorm mode."""
    short, long = clips(n=1, t=8, size=32), clips(n=1, t=32, size=32)
    bounded = [
        saved_peak(make_model(train_memory=mode, chunk_size=4, norm_stats=norm_stats), x, training)
        for x in (short, long)
    ]
    plain = [
        saved_peak(make_model(train_memory="unbounded", chunk_size=4, norm_stats=norm_stats), x, training)
        for x in (short, long)
    ]
    # The plain graph keeps every chunk (the measure can see growth)...
    assert plain[1] > 3.5 * plain[0]
    # ...the bounded step holds one chunk's activations whatever T (the clip itself is the caller's).
    assert bounded[1] <= bounded[0] * 1.05 + 4096
    assert bounded[0] < plain[0]


@pytest.mark.parametrize("seed_scale", [None, 2.0**40])
def test_float16_autocast_with_a_gradient_scale(make_model, clips, monkeypatch, seed_scale):
    """fp16 (the trainer's CUDA default, with GradScaler) also runs on CPU: the bounded step's own
    seed scale gives the plain step's gradients, and backs off when it overflows float16."""
    from fvc_naive_cnn import chunked

    if seed_scale is not None:
        monkeypatch.setattr(chunked, "FP16_SEED_SCALE", seed_scale)
    x, labels = clips(n=1, t=6), torch.tensor([1])
    grads = {}
    for memory in ("unbounded", "bounded"):
        model = make_model(train_memory=memory, chunk_size=3).train()
        torch.manual_seed(2)
        with torch.autocast("cpu", dtype=torch.float16):
            out = model(x)
        (F.cross_entropy(out, labels) * 1024.0).backward()  # what GradScaler does to the loss
        grads[memory] = {n: p.grad for n, p in model.named_parameters()}
    for name, plain in grads["unbounded"].items():
        if name.startswith("conv") and name.endswith("bias"):
            continue  # zero up to rounding: BatchNorm follows
        assert torch.isfinite(grads["bounded"][name]).all(), name
        assert (grads["bounded"][name] - plain).norm() / plain.norm() < 0.01, name


@pytest.mark.parametrize("mode", MODES)
def test_double_backward_is_refused_not_wrong(make_model, clips, mode):
    model = make_model(train_memory=mode, chunk_size=2).train()
    loss = F.cross_entropy(model(clips(n=1, t=4)), torch.tensor([1]))
    with pytest.raises(RuntimeError, match="first-order gradients only"):
        torch.autograd.grad(loss, list(model.parameters()), create_graph=True)
