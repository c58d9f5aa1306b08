"""Training a per-frame network on long clips with memory that does not grow with T.

A clip of T frames is cut into chunks (inside each video, never across two). The
network maps a chunk of frames to centred frame logits (each frame's logits sum to
zero), and a video's logits are the mean of its frame logits. Three ways to get
gradients, all giving the same numbers (``train_memory``):

``bounded`` (default): backpropagate each chunk during the forward pass.
    The gradient of any loss with respect to centred logits ``v`` enters through
    ``g . v`` where ``g`` sums to zero, so ``g . v = sum_{c>=1} g_c (v_c - v_0)``. The
    forward pass therefore backpropagates ``s_c = sum_t (v_c(t) - v_0(t))`` of each chunk
    at once (C - 1 scalars: one for two classes) and keeps the parameter gradients
    ``G_c`` per video; the real backward only mixes them: ``dL/dtheta = sum_c g_c G_c / T``.
    A chunk's activations are freed before the next chunk runs, nothing is recomputed,
    and the BatchNorm running statistics are updated exactly once per chunk.
``recompute``: forward without keeping activations, then in backward recompute each
    chunk (same dropout masks, BatchNorm on the same batch statistics without touching
    the running ones) and backpropagate it. Costs one more forward; works for frame-level
    losses and for inputs that need a gradient, which ``bounded`` hands over to it.
``unbounded``: one autograd graph over every chunk (memory grows with T): the reference.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager

import torch

from fvc_naive_cnn.clips import to_network_input

# run_chunk(network_input (k, 3, H, W), bn_mode) -> centred logits (k, C);
# bn_mode: "update" (batch statistics, running ones updated), "batch" (batch statistics only),
# "running" (running statistics).
ChunkFn = Callable[[torch.Tensor, str], torch.Tensor]


def chunk_bounds(frames: int, chunk_size: int) -> list[tuple[int, int]]:
    return [(s, min(s + chunk_size, frames)) for s in range(0, frames, chunk_size)]


def _autocast_state(device_type: str) -> tuple[bool, torch.dtype]:
    return torch.is_autocast_enabled(device_type), torch.get_autocast_dtype(device_type)


def _rng_state(device: torch.device) -> tuple[torch.Tensor, torch.Tensor | None]:
    cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None
    return torch.get_rng_state(), cuda


@contextmanager
def _replayed_rng(state: tuple[torch.Tensor, torch.Tensor | None], device: torch.device):
    """Run a chunk again with the random numbers (dropout masks) of its first run."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.set_rng_state(state[0])
        if state[1] is not None:
            torch.cuda.set_rng_state(state[1], device)
        yield


def frame_logits_no_graph(
    run_chunk: ChunkFn, frames: torch.Tensor, chunk_size: int, bn_mode: str, dtype: torch.dtype
) -> torch.Tensor:
    """Frame logits (N, T, C) float32, chunk by chunk, keeping no autograd graph."""
    n_videos, t = frames.shape[:2]
    out: torch.Tensor | None = None
    with torch.no_grad():
        for n in range(n_videos):
            for s, e in chunk_bounds(t, chunk_size):
                logits = run_chunk(to_network_input(frames[n, s:e], dtype), bn_mode)
                if out is None:
                    out = logits.new_empty((n_videos, t, logits.shape[1]), dtype=torch.float32)
                out[n, s:e] = logits
    assert out is not None
    return out


def frame_logits_unbounded(
    run_chunk: ChunkFn, frames: torch.Tensor, chunk_size: int, bn_mode: str, dtype: torch.dtype
) -> torch.Tensor:
    """Frame logits (N, T, C) with one autograd graph over every chunk."""
    videos = []
    for n in range(frames.shape[0]):
        chunks = [
            run_chunk(to_network_input(frames[n, s:e], dtype), bn_mode).float()
            for s, e in chunk_bounds(frames.shape[1], chunk_size)
        ]
        videos.append(torch.cat(chunks))
    return torch.stack(videos)


def _first_order_only(mode: str) -> None:
    # Grad mode is on inside backward only under create_graph=True: these gradients were (or are)
    # computed without a graph of their own, so a second derivative would be silently wrong.
    if torch.is_grad_enabled():
        raise RuntimeError(
            f"naive_cnn: train_memory={mode} gives first-order gradients only; "
            "use train_memory=unbounded for create_graph=True"
        )


class _Recomputed(torch.autograd.Function):
    """Frame logits computed without a graph; each chunk is recomputed in backward."""

    @staticmethod
    def forward(ctx, frames, run_chunk, chunk_size, bn_mode, dtype, *params):
        device = frames.device
        n_videos, t = frames.shape[:2]
        bounds = chunk_bounds(t, chunk_size)
        rng = []
        out = None
        with torch.no_grad():
            for n in range(n_videos):
                for s, e in bounds:
                    rng.append(_rng_state(device))
                    logits = run_chunk(to_network_input(frames[n, s:e], dtype), bn_mode)
                    if out is None:
                        out = logits.new_empty((n_videos, t, logits.shape[1]), dtype=torch.float32)
                    out[n, s:e] = logits
        ctx.save_for_backward(frames)
        ctx.params = params
        ctx.run_chunk, ctx.bounds, ctx.dtype, ctx.rng = run_chunk, bounds, dtype, rng
        # The recomputation must not update BatchNorm's running statistics a second time.
        ctx.bn_mode = "batch" if bn_mode == "update" else bn_mode
        ctx.autocast = _autocast_state(device.type)
        return out

    @staticmethod
    def backward(ctx, grad_out):
        _first_order_only("recompute")
        (frames,) = ctx.saved_tensors
        params = ctx.params
        wanted = [i for i, p in enumerate(params) if ctx.needs_input_grad[5 + i]]
        grads: list[torch.Tensor | None] = [None] * len(params)
        for i in wanted:
            grads[i] = torch.zeros_like(params[i])
        input_grad = torch.zeros_like(frames) if ctx.needs_input_grad[0] else None
        device = frames.device
        enabled, cast_dtype = ctx.autocast
        chunk = 0
        for n in range(frames.shape[0]):
            for s, e in ctx.bounds:
                upstream = grad_out[n, s:e]
                state = ctx.rng[chunk]
                chunk += 1
                if not upstream.any():
                    continue
                x = frames[n, s:e].detach()
                if input_grad is not None:
                    x.requires_grad_(True)
                with torch.enable_grad():
                    with _replayed_rng(state, device), torch.autocast(device.type, dtype=cast_dtype, enabled=enabled):
                        logits = ctx.run_chunk(to_network_input(x, ctx.dtype), ctx.bn_mode).float()
                    inputs = [params[i] for i in wanted] + ([x] if input_grad is not None else [])
                    got = torch.autograd.grad(logits, inputs, upstream, allow_unused=True)
                for i, g in zip(wanted, got[: len(wanted)], strict=True):
                    if g is not None:
                        grads[i].add_(g)
                if input_grad is not None and got[-1] is not None:
                    input_grad[n, s:e] = got[-1]
        return (input_grad, None, None, None, None, *grads)


def frame_logits_recomputed(
    run_chunk: ChunkFn,
    frames: torch.Tensor,
    chunk_size: int,
    bn_mode: str,
    dtype: torch.dtype,
    params: Sequence[torch.nn.Parameter],
) -> torch.Tensor:
    """Frame logits (N, T, C) whose backward recomputes each chunk (memory bounded, general)."""
    return _Recomputed.apply(frames, run_chunk, chunk_size, bn_mode, dtype, *params)


class _StoredGradients(torch.autograd.Function):
    """Video logits whose parameter gradients were computed during the forward pass."""

    @staticmethod
    def forward(ctx, video_logits, stored, frames_per_video, *params):
        ctx.stored, ctx.frames_per_video = stored, frames_per_video
        return video_logits.clone()

    @staticmethod
    def backward(ctx, grad_video):
        _first_order_only("bounded")
        # Centred logits pass on only the zero-sum part of any upstream gradient.
        g = grad_video - grad_video.mean(1, keepdim=True)
        weights = g[:, 1:] / ctx.frames_per_video  # (N, C-1)
        grads = [
            None if G is None else torch.tensordot(weights.to(G.dtype), G, dims=([0, 1], [0, 1])) for G in ctx.stored
        ]
        return (None, None, None, *grads)


# float16 gradients underflow below ~6e-8. GradScaler guards the plain backward by scaling the
# loss, but the backward run here, inside the forward pass, never sees the loss: it seeds each
# chunk with a scale of its own (about what GradScaler's default gives a plain step at T=10..100)
# and backs off when that overflows, so a step is never lost to an inf.
FP16_SEED_SCALE = 256.0


def _is_fp16(device_type: str, dtype: torch.dtype) -> bool:
    enabled, cast = _autocast_state(device_type)
    return dtype == torch.float16 or (enabled and cast == torch.float16)


def _grads_of(output: torch.Tensor, inputs: list[torch.Tensor], retain_graph: bool, fp16: bool):
    if not fp16:
        return torch.autograd.grad(output, inputs, retain_graph=retain_graph, allow_unused=True)
    scale = FP16_SEED_SCALE
    while True:
        got = torch.autograd.grad(output * scale, inputs, retain_graph=True, allow_unused=True)
        present = [g.flatten().float() for g in got if g is not None]
        if scale <= 2.0**-8 or not present or bool(torch.isfinite(torch.cat(present)).all()):
            return [None if g is None else g / scale for g in got]
        scale /= 16


def video_logits_bounded(
    run_chunk: ChunkFn,
    frames: torch.Tensor,
    chunk_size: int,
    bn_mode: str,
    dtype: torch.dtype,
    params: Sequence[torch.nn.Parameter],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Video logits (N, C) that backpropagate like ``mean_t`` of the frame logits, and the
    frame logits (N, T, C, detached). Each chunk is backpropagated here, during the forward pass.
    """
    n_videos, t = frames.shape[:2]
    params = list(params)
    trainable = [p for p in params if p.requires_grad]
    stored: list[torch.Tensor | None] | None = None
    frame_logits: torch.Tensor | None = None
    fp16 = _is_fp16(frames.device.type, dtype)
    for n in range(n_videos):
        for s, e in chunk_bounds(t, chunk_size):
            with torch.enable_grad():
                logits = run_chunk(to_network_input(frames[n, s:e], dtype), bn_mode).float()
                classes = logits.shape[1]
                if stored is None:
                    stored = [
                        p.new_zeros((n_videos, classes - 1, *p.shape)) if p.requires_grad else None for p in params
                    ]
                    frame_logits = logits.new_empty((n_videos, t, classes))
                frame_logits[n, s:e] = logits.detach()
                contrasts = (logits[:, 1:] - logits[:, :1]).sum(0)
            # Backward outside autocast, as PyTorch advises; each op keeps its forward dtype.
            with torch.enable_grad(), torch.autocast(frames.device.type, enabled=False):
                for c in range(classes - 1):
                    got = _grads_of(contrasts[c], trainable, c < classes - 2, fp16)
                    got_iter = iter(got)
                    for i, p in enumerate(params):
                        if p.requires_grad:
                            g = next(got_iter)
                            if g is not None:
                                stored[i][n, c].add_(g)
            del logits, contrasts
    assert frame_logits is not None and stored is not None
    video = frame_logits.mean(1)
    return _StoredGradients.apply(video, stored, t, *params), frame_logits
