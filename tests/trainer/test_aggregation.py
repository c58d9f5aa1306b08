"""trainer.aggregation: how a video's score is made from its frames, for models with and without frame scores."""

from __future__ import annotations

import json

import pytest
import torch

from fvc_core.errors import UserError
from fvc_core.training.scoring import NO_FRAME_SCORES, Aggregation
from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import TinyModel, make_job, small_config


class FramesModel(TinyModel):
    """TinyModel with the optional frame_logits(x) of the model contract."""

    def frame_logits(self, x: torch.Tensor) -> torch.Tensor:
        n, t = x.shape[:2]
        frames = x.reshape(n * t, *x.shape[2:]).float() / 255.0
        return self.head(self.features(frames)).reshape(n, t, 2)


def test_a_model_without_frame_scores_gets_no_frame_level_number_and_says_so(tmp_path):
    torch.set_num_threads(1)
    config = small_config(folds=2, epochs=1)
    SupervisedTrainer(config).run(make_job(tmp_path, config))
    metrics = json.loads((tmp_path / "tiny_model/fold_0/metrics.json").read_text())
    assert metrics["frame_roc_auc"] is None and metrics["n_frames"] is None
    assert metrics["aggregation"]["name"] == "mean_logits"
    assert metrics["aggregation"]["frame_scores"] == NO_FRAME_SCORES


def test_an_aggregation_that_needs_frames_is_one_line_for_a_model_without_them(tmp_path):
    config = small_config(folds=2, epochs=1, aggregation="max")
    with pytest.raises(UserError, match=r"trainer.aggregation: max needs frame scores.*TinyModel"):
        SupervisedTrainer(config).run(make_job(tmp_path, config))


@pytest.mark.parametrize("name, expected", [
    ("mean_prob", lambda p: p.mean(1)),
    ("max", lambda p: p.max(1).values),
    ("topk", lambda p: p.topk(2, dim=1).values.mean(1)),
    ("mean_logits", None),
])
def test_each_aggregation_of_frame_probabilities(name, expected):
    torch.manual_seed(0)
    model = FramesModel().eval()
    clips = torch.randint(0, 255, (3, 5, 3, 8, 8), dtype=torch.uint8)
    with torch.no_grad():
        logits, scores, frames = Aggregation(name, top_k=2).score(model, clips)
        probs = torch.softmax(model.frame_logits(clips), -1)[..., 1]
    assert torch.allclose(frames, probs)
    want = torch.softmax(model(clips), -1)[:, 1] if expected is None else expected(probs)
    assert torch.allclose(scores, want, atol=1e-6)
    assert torch.allclose(logits, model(clips))
