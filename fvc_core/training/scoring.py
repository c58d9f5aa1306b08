"""From a model's output to fake scores: per frame when the model gives frame logits, per video by the
chosen aggregation (``trainer.aggregation``).

One place, used by training's validation and test scoring, ``fvc predict`` and ``fvc evaluate``, so a
video gets the same score from all three. A model offers frame scores through the optional
``frame_logits(x) -> (N, T, classes)`` of the model contract (naive_cnn has it, ``fvc explain`` uses
it); one that does not gets no frame-level number, and only its own video logits as the video score.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fvc_core.errors import UserError

if TYPE_CHECKING:
    import torch

AGGREGATIONS = {
    "mean_logits": "fake probability of the mean of the frame logits (the model's own video logits)",
    "mean_prob": "mean of the frames' fake probabilities",
    "max": "largest frame fake probability",
    "topk": "mean of the top_k largest frame fake probabilities",
}
NO_FRAME_SCORES = "none: the model gives no frame_logits"


def fake_probability(logits: torch.Tensor, *, per_frame: bool = False) -> torch.Tensor:
    """Fake probability of video logits ``(N, 2)`` (softmax) or ``(N, 1)`` / ``(N,)`` (sigmoid); with
    ``per_frame``, of frame logits ``(N, T, 2)``, ``(N, T, 1)`` or ``(N, T)``."""
    import torch

    logits = logits.float()
    if logits.ndim == (3 if per_frame else 2):  # a class axis
        if logits.shape[-1] == 2:
            return torch.softmax(logits, dim=-1)[..., 1]
        if logits.shape[-1] == 1:
            return torch.sigmoid(logits[..., 0])
        raise UserError(f"model output of shape {tuple(logits.shape)}: expected logits for real/fake "
                        "(2 classes, or 1 with a sigmoid)")
    return torch.sigmoid(logits)


def has_frame_scores(model: Any) -> bool:
    return callable(getattr(model, "frame_logits", None))


def _forward_gives_frames(model: Any) -> bool:
    try:
        return "return_frame_logits" in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


@dataclass(frozen=True)
class Aggregation:
    """How a video's score is made from its frames; recorded beside every number it made."""

    name: str = "mean_logits"
    top_k: int = 3

    def describe(self, model: Any | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "how": AGGREGATIONS[self.name]}
        if self.name == "topk":
            out["top_k"] = self.top_k
        if model is not None and not has_frame_scores(model):
            out["frame_scores"] = NO_FRAME_SCORES
        return out

    def check(self, model: Any) -> None:
        """Any aggregation but the model's own needs its frame scores: one line when it has none."""
        if self.name != "mean_logits" and not has_frame_scores(model):
            raise UserError(f"trainer.aggregation: {self.name} needs frame scores, and model "
                            f"{type(model).__name__} gives none (no frame_logits(x) method); use mean_logits")

    def score(self, model: Any, videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(video logits for the loss, video fake scores (N,), frame fake scores (N, T) or None).

        ``(N, K, T, C, H, W)``, K windows of each video (``data.sampler: window``): each window is
        scored on its own, one forward pass at a time; the video's score is the mean of its windows'
        scores, its logits those whose probability is the mean of theirs (fvc_core.training.clips),
        and its frame scores the windows' frames one after another (N, K * T)."""
        import torch

        from fvc_core.training.clips import CLIP_DIMS, mean_probability_logits

        if videos.ndim == CLIP_DIMS:
            parts = [self._score_clip(model, videos[:, k]) for k in range(videos.shape[1])]
            logits = mean_probability_logits(torch.stack([p[0] for p in parts], dim=1))
            scores = torch.stack([p[1] for p in parts], dim=1).mean(1)
            frames = None if parts[0][2] is None else torch.cat([p[2] for p in parts], dim=1)
            return logits, scores, frames
        return self._score_clip(model, videos)

    def _score_clip(self, model: Any, videos: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        import torch

        if not has_frame_scores(model):
            logits = model(videos)
            return logits, fake_probability(logits), None
        if _forward_gives_frames(model):
            logits, frames = model(videos, return_frame_logits=True)
        else:
            logits, frames = model(videos), model.frame_logits(videos)
        frame_scores = fake_probability(frames, per_frame=True)
        if self.name == "mean_logits":
            scores = fake_probability(logits)
        elif self.name == "mean_prob":
            scores = frame_scores.mean(1)
        elif self.name == "max":
            scores = frame_scores.max(1).values
        else:
            k = min(self.top_k, frame_scores.shape[1])  # a clip shorter than k: every frame counts
            scores = torch.topk(frame_scores, k, dim=1).values.mean(1)
        return logits, scores, frame_scores


def aggregation_of(config: dict[str, Any] | None) -> Aggregation:
    """The aggregation a run's config.yaml names; runs made before the key existed used mean_logits."""
    trainer = (config or {}).get("trainer") or {}
    return Aggregation(str(trainer.get("aggregation", "mean_logits")), int(trainer.get("top_k", 3)))
