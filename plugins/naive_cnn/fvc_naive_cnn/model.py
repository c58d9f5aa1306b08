"""NaiveCNNBaseline: a per-frame 2D CNN whose video logits are the mean of its frame logits.

BatchNorm and evaluation. Trained with batch 1 and chunks of ``chunk_size`` frames,
every BatchNorm layer only ever sees the statistics of one chunk of one clip. Scored
with running averages instead, the seed's model measured a mean test AUC of 0.57
against 0.90 for the very same weights scored with per-clip statistics. So by default
(``norm_stats="clip"``) evaluation normalises each chunk with its own statistics,
exactly as training does, and neither uses nor updates the running statistics;
``norm_stats="running"`` keeps textbook BatchNorm. Chunks are always cut inside one
video, so a video's score never depends on the other videos of its batch.

Logits are centred: each frame's logits sum to zero (``softmax``, cross-entropy,
argmax and every probability are unchanged by it). This is what lets a training step
backpropagate each chunk during the forward pass with no recomputation (see
``fvc_naive_cnn.chunked``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fvc_naive_cnn import chunked
from fvc_naive_cnn.clips import frames_view


class NaiveCNNBaseline(nn.Module):
    """Conv(3→32)+BN+ReLU+MaxPool → Conv(32→64)+BN+ReLU+MaxPool → Conv(64→128)+BN+ReLU+AvgPool
    → Linear(128→64)+ReLU+Dropout → Linear(64→num_classes), per frame.

    Input: a batch of clips, uint8 (0-255) or float (0-1), ``(N, T, C, H, W)`` (``ntchw``) or
    ``(N, C, T, H, W)`` (``ncthw``); both map to [-1, 1] one chunk at a time, so a clip never
    exists whole as float. ``forward(x)`` returns video logits ``(N, num_classes)``;
    ``forward(x, return_frame_logits=True)`` also returns frame logits ``(N, T, num_classes)``.

    Layer attributes carry the seed's names (conv1, bn1, ..., fc2), so its checkpoints load.
    """

    def __init__(
        self,
        num_classes: int = 2,
        chunk_size: int = 10,
        dropout: float = 0.5,
        layout: str = "auto",
        norm_stats: str = "clip",
        train_memory: str = "bounded",
        compile: bool = False,
    ):
        super().__init__()
        if chunk_size < 1:
            raise ValueError(f"naive_cnn: chunk_size must be >= 1, got {chunk_size}")
        if num_classes < 2:
            raise ValueError(f"naive_cnn: num_classes must be >= 2, got {num_classes}")
        if norm_stats not in ("clip", "running"):
            raise ValueError(f"naive_cnn: norm_stats must be 'clip' or 'running', got {norm_stats!r}")
        if train_memory not in ("bounded", "recompute", "unbounded"):
            raise ValueError(f"naive_cnn: unknown train_memory {train_memory!r}")
        self.num_classes = num_classes
        self.chunk_size = chunk_size
        self.layout = layout
        self.norm_stats = norm_stats
        self.train_memory = train_memory
        self.compile = compile

        self.conv1 = nn.Conv2d(3, 32, kernel_size=3, padding=1)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu1 = nn.ReLU(inplace=True)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu2 = nn.ReLU(inplace=True)
        self.pool2 = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(64, 128, kernel_size=3, padding=1)
        self.bn3 = nn.BatchNorm2d(128)
        self.relu3 = nn.ReLU(inplace=True)
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc1 = nn.Linear(128, 64)
        self.relu4 = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(64, num_classes)
        self._compiled: Any = None
        self.reset_parameters()

    @classmethod
    def from_config(cls, config: Any) -> NaiveCNNBaseline:
        return cls(
            num_classes=config.num_classes,
            chunk_size=config.chunk_size,
            dropout=config.dropout,
            layout=config.layout,
            norm_stats=config.norm_stats,
            train_memory=config.train_memory,
            compile=config.compile,
        )

    def reset_parameters(self) -> None:
        """He (Kaiming) initialisation for conv and linear layers; BatchNorm weight 1, bias 0."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(
                    m.weight, mode="fan_out" if isinstance(m, nn.Conv2d) else "fan_in", nonlinearity="relu"
                )
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def parameter_groups(self) -> dict[str, list[nn.Parameter]]:
        """No pretrained backbone: every parameter is trained at the head's learning rate."""
        return {"backbone": [], "head": list(self.parameters())}

    # --- one chunk -----------------------------------------------------------------------------

    def _norm(self, bn: nn.BatchNorm2d, x: torch.Tensor, bn_mode: str) -> torch.Tensor:
        if bn_mode == "running":
            return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
        if bn_mode == "batch":
            # Batch statistics, running ones left alone: evaluation with norm_stats="clip",
            # and recomputation of a chunk whose statistics were already counted.
            return F.batch_norm(x, None, None, bn.weight, bn.bias, True, 0.0, bn.eps)
        # "update": what nn.BatchNorm2d does in training mode.
        bn.num_batches_tracked.add_(1)
        momentum = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
        return F.batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, True, momentum, bn.eps)

    def _chunk_logits(self, x: torch.Tensor, bn_mode: str) -> torch.Tensor:
        """Centred frame logits (k, num_classes) of one chunk (k, 3, H, W) of one video."""
        x = self.pool1(self.relu1(self._norm(self.bn1, self.conv1(x), bn_mode)))
        x = self.pool2(self.relu2(self._norm(self.bn2, self.conv2(x), bn_mode)))
        x = self.pool(self.relu3(self._norm(self.bn3, self.conv3(x), bn_mode))).flatten(1)
        logits = self.fc2(self.dropout(self.relu4(self.fc1(x))))
        return logits - logits.mean(1, keepdim=True)

    def _run_chunk(self) -> chunked.ChunkFn:
        if not self.compile:
            return self._chunk_logits
        if self._compiled is None:
            self._compiled = torch.compile(self._chunk_logits)
        return self._compiled

    # --- a batch of clips ----------------------------------------------------------------------

    def _bn_mode(self) -> str:
        if self.training:
            return "update"
        return "batch" if self.norm_stats == "clip" else "running"

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Frame logits (N, T, num_classes), float32."""
        return self.forward(x, return_frame_logits=True)[1]

    def forward(
        self, x: torch.Tensor, return_frame_logits: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        frames = frames_view(x, self.layout)
        params = list(self.parameters())
        dtype = self.conv1.weight.dtype
        args = (self._run_chunk(), frames, self.chunk_size, self._bn_mode(), dtype)
        needs_graph = torch.is_grad_enabled() and (frames.requires_grad or any(p.requires_grad for p in params))
        if not needs_graph:
            frame_logits = chunked.frame_logits_no_graph(*args)
        elif self.train_memory == "unbounded":
            frame_logits = chunked.frame_logits_unbounded(*args)
        elif self.train_memory == "bounded" and not return_frame_logits and not frames.requires_grad:
            video, _ = chunked.video_logits_bounded(*args, params)
            return video
        else:
            # Frame-level losses and input gradients need every frame's own upstream gradient.
            frame_logits = chunked.frame_logits_recomputed(*args, params)
        video = frame_logits.mean(1)
        return (video, frame_logits) if return_frame_logits else video

    def extra_repr(self) -> str:
        return (
            f"chunk_size={self.chunk_size}, layout={self.layout!r}, norm_stats={self.norm_stats!r}, "
            f"train_memory={self.train_memory!r}"
        )
