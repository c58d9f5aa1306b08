"""Video logits from a batch that holds several clips per video (evaluation windows).

A dataset may answer an evaluation read with ``(K, T, C, H, W)``: K windows of one
video (``data.sampler: window`` with ``clips_per_video: K``), so a batch is
``(N, K, T, C, H, W)``. The model sees one window at a time, ``(N, T, C, H, W)``, as
in training; the video's fake probability is the mean of its windows' probabilities,
returned as logits that give back exactly that mean, so the loss and the scores of
the caller stay those of ordinary video logits.
"""

from __future__ import annotations

from typing import Any

import torch

CLIP_DIMS = 6
"""Dimensions of a batch with several clips per video: (N, K, T, C, H, W)."""


def video_logits(model: Any, videos: torch.Tensor) -> torch.Tensor:
    """``model(videos)``; for ``(N, K, T, C, H, W)``, the K clips' probabilities averaged, as logits.

    One window at a time: the memory of a forward pass is that of a training batch.
    """
    if videos.ndim != CLIP_DIMS:
        return model(videos)
    return mean_probability_logits(torch.stack([model(videos[:, k]) for k in range(videos.shape[1])], dim=1))


def mean_probability_logits(logits: torch.Tensor) -> torch.Tensor:
    """``(N, K, ...)`` clip logits -> ``(N, ...)`` logits whose probabilities are the mean over K.

    Two-class logits ``(N, K, 2)`` go through softmax (the log of the mean is a
    valid logit vector); one logit per clip ``(N, K)`` / ``(N, K, 1)`` through a
    sigmoid. Other shapes are averaged as logits (the trainer refuses them anyway).
    """
    logits = logits.float()
    if logits.ndim == 3 and logits.shape[2] == 2:
        return torch.log(torch.softmax(logits, dim=2).mean(dim=1))
    if logits.ndim == 2 or (logits.ndim == 3 and logits.shape[2] == 1):
        # Mean of probabilities, back to a logit; log-sum-exp keeps extreme logits finite.
        k = logits.shape[1]
        log_p = torch.logsumexp(torch.nn.functional.logsigmoid(logits), dim=1) - torch.log(torch.tensor(float(k)))
        log_q = torch.logsumexp(torch.nn.functional.logsigmoid(-logits), dim=1) - torch.log(torch.tensor(float(k)))
        return log_p - log_q
    return logits.mean(dim=1)
