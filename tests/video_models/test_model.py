"""fvc-video-models: windows bound memory without changing the numbers, weights load from a local file
only, and the model's declared input is checked against data: before anything runs."""

from __future__ import annotations

import copy

import pytest
import torch

from fvc_core.config import load_config
from fvc_core.errors import ConfigError, UserError

pytest.importorskip("fvc_video_models")

from fvc_video_models.model import VideoClassifier  # noqa: E402


def _clips(n: int = 2, frames: int = 4, size: int = 32) -> torch.Tensor:
    return torch.randint(0, 256, (n, frames, 3, size, size), generator=torch.Generator().manual_seed(0),
                         dtype=torch.uint8)


def test_windows_average_the_logits_of_each_window():
    torch.manual_seed(0)
    model = VideoClassifier("r2plus1d", blocks=1, window=2).eval()
    x = _clips()
    with torch.no_grad():
        whole = model(x)
        model.window = None
        halves = (model(x[:, :2]) + model(x[:, 2:])) / 2
    assert torch.allclose(whole, halves, atol=1e-5)


@pytest.mark.parametrize("arch", ["r2plus1d", "mc3"])
def test_bounded_training_gives_the_gradients_and_running_statistics_of_unbounded(arch):
    torch.manual_seed(0)
    bounded = VideoClassifier(arch, blocks=1, window=2, train_memory="bounded").train()
    unbounded = copy.deepcopy(bounded)
    unbounded.train_memory = "unbounded"
    x, y = _clips(), torch.tensor([0, 1])
    for model in (bounded, unbounded):
        torch.nn.functional.cross_entropy(model(x), y).backward()
    for (name, a), b in zip(bounded.named_parameters(), unbounded.parameters(), strict=True):
        assert torch.allclose(a.grad, b.grad, rtol=1e-4, atol=1e-6), name
    # Each window counted once in the running statistics, not again when recomputed in backward.
    for a, b in zip(bounded.buffers(), unbounded.buffers(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)


def test_weights_load_from_a_local_file_keeping_the_new_head(tmp_path):
    torch.manual_seed(1)
    kinetics = VideoClassifier("r2plus1d", num_classes=400, blocks=1)
    torch.save(kinetics.state_dict(), tmp_path / "kinetics.pt")
    model = VideoClassifier("r2plus1d", num_classes=2, blocks=1)
    assert model.backbone_pretrained is False
    model.load_weights(tmp_path / "kinetics.pt")
    assert model.backbone_pretrained is True
    assert torch.equal(model.stem[0].weight, kinetics.stem[0].weight)
    assert model.fc.weight.shape == (2, 512)
    groups = model.parameter_groups()
    assert {id(p) for p in groups["head"]} == {id(model.fc.weight), id(model.fc.bias)}
    assert len(groups["backbone"]) + len(groups["head"]) == len(list(model.parameters()))


def test_weights_that_do_not_fit_or_would_run_code_are_one_line(tmp_path):
    torch.save(VideoClassifier("r3d", blocks=1).state_dict(), tmp_path / "r3d.pt")
    with pytest.raises(UserError, match=r"r3d.pt: does not fit r2plus1d with 1 block\(s\) a stage: .* of another "
                       "shape"):
        VideoClassifier("r2plus1d", blocks=1).load_weights(tmp_path / "r3d.pt")
    torch.save({"weights": torch.nn.Linear(2, 2)}, tmp_path / "pickled.pt")  # a module: needs pickle to load
    with pytest.raises(UserError, match="pickled.pt: not a state dict torch can load safely"):
        VideoClassifier("r2plus1d", blocks=1).load_weights(tmp_path / "pickled.pt")
    with pytest.raises(UserError, match="model.weights: .*nowhere.pt: no such file"):
        VideoClassifier("r2plus1d", blocks=1).load_weights(tmp_path / "nowhere.pt")


CONFIG = """
output_dir: out
data: {name: metadata, metadata: t.parquet, sampler: window, clip_len: 8, size: 64}
model: {name: r2plus1d, window: 4}
trackers: []
"""


def test_the_model_needs_consecutive_frames_and_says_so_before_anything_runs(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(CONFIG)
    assert load_config(path).model.name == "r2plus1d"
    with pytest.raises(ConfigError) as err:
        load_config(path, ["data={sampler: uniform, clip_len: null, num_frames: 8}"])
    assert err.value.problems == ["model.name: 'r2plus1d' needs consecutive frames (data.sampler: window); "
                                  "data.sampler is uniform (frames spread over the whole video)"]
    with pytest.raises(ConfigError) as err:
        load_config(path, ["data.clip_len=6", "data.size=16", "model.weights_fps=15", "data.fps=10"])
    assert err.value.problems == [
        "model.name: 'r2plus1d' needs a multiple of 4 frames a clip; data.clip_len gives 6",
        "model.name: 'r2plus1d' needs frames of at least 32 x 32; data.size gives 16 x 16",
        "model.name: 'r2plus1d' was made for clips at 15 fps; data.fps is 10",
    ]
