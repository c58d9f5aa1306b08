"""`fvc run` trains timm backbones on real encoded videos, from weights saved to a file by timm itself,
and scores every frame; the weights file is really what the model starts from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import torch
from safetensors.torch import load_file, save_file

from fvc_core.cli import main
from tests.timm_models.conftest import experiment

FVC = [sys.executable, "-m", "fvc_core.cli"]


def _timm_weights(tmp_path: Path, arch: str, seed: int, **kwargs) -> Path:
    """Weights timm itself makes (a random ImageNet-shaped network: a 1000-class head), saved as safetensors."""
    from fvc_timm.timm_import import import_timm

    torch.manual_seed(seed)
    net = import_timm().create_model(arch, pretrained=False, **kwargs)
    path = tmp_path / f"{arch}_{seed}.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path))
    return path


def _fold_metrics(run: Path) -> list[dict]:
    return [json.loads((run / f"fold_{k}" / "metrics.json").read_text()) for k in (0, 1)]


def test_the_fvc_command_trains_a_timm_arch_from_a_local_weights_file(tmp_path, video_table):
    weights = _timm_weights(tmp_path, "resnet10t", seed=0)
    exp = experiment(tmp_path, video_table, {"name": "timm", "arch": "resnet10t", "weights": str(weights),
                                             "chunk_size": 3})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([*FVC, "run", str(exp)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    # The pretrained backbone learns at lr/100, as docs/trainer.md says for pretrained weights.
    assert "pretrained backbone: lr/100" in done.stdout
    run = tmp_path / "runs" / "timm"
    for metrics in _fold_metrics(run):
        assert 0.0 <= metrics["roc_auc"] <= 1.0
        assert metrics["n_frames"] == 4 * 4  # 4 test videos of 4 frames: every frame scored
        assert metrics["frame_roc_auc"] is not None
    predictions = pl.read_parquet(run / "fold_0" / "predictions.parquet")
    assert predictions["score"].is_between(0, 1).all()


@pytest.mark.parametrize(("model", "weights_kwargs"), [
    ({"name": "timm", "arch": "mobilenetv3_small_050"}, {}),
    ({"name": "timm", "arch": "vit_tiny_patch16_224", "img_size": 32}, {"img_size": 32}),
])
def test_fvc_run_trains_cnns_and_vision_transformers_with_frame_scores(tmp_path, video_table, model,
                                                                       weights_kwargs):
    model = {**model, "weights": str(_timm_weights(tmp_path, model["arch"], seed=0, **weights_kwargs))}
    assert main(["run", str(experiment(tmp_path, video_table, model, aggregation="mean_prob"))]) == 0
    run = tmp_path / "runs" / model["name"]
    for metrics in _fold_metrics(run):
        assert metrics["frame_roc_auc"] is not None and metrics["n_frames"] == 16
        assert metrics["aggregation"]["name"] == "mean_prob"
    # fvc explain draws Grad-CAM maps of every fold (a transformer's tokens as their grid).
    video = Path(pl.read_parquet(video_table)["video_path"][1])
    assert main(["explain", str(run), str(video), "-o", str(tmp_path / "explain")]) == 0
    drawn = sorted(p.name for p in (tmp_path / "explain").glob("*.png"))
    assert drawn == [f"{video.stem}_{name}.png" for name in ("frame_scores", "gradcam_fold_0", "gradcam_fold_1")]


def test_another_weights_file_gives_other_predictions(tmp_path, video_table):
    """The file's weights are the ones the model starts from: two files, two sets of scores, same seed."""
    from fvc_core.training.predict import load_fold_model

    scores = []
    for seed in (0, 1):
        folder = tmp_path / f"w{seed}"
        folder.mkdir()
        weights = _timm_weights(folder, "resnet10t", seed=seed)
        exp = experiment(folder, video_table, {"name": "timm", "arch": "resnet10t", "weights": str(weights)},
                         epochs=1, lr=1e-12, backbone_lr=1e-12)
        assert main(["run", str(exp)]) == 0
        conv = load_file(str(weights))["conv1.0.weight"]
        weights.unlink()  # a finished run's folds hold their weights: the file is not needed to use them
        model = load_fold_model(folder / "runs" / "timm" / "fold_0")
        # lr 1e-12: the trained backbone is still the file's, to float precision.
        assert torch.allclose(model.backbone.conv1[0].weight, conv, atol=1e-6)
        assert model.frame_logits(torch.zeros(1, 2, 3, 32, 32, dtype=torch.uint8)).shape == (1, 2, 2)
        scores.append(pl.read_parquet(folder / "runs" / "timm" / "fold_0" / "predictions.parquet")["score"])
    assert (scores[0] - scores[1]).abs().max() > 1e-4


def test_a_linear_probe_trains_the_classifier_alone(tmp_path, video_table):
    """freeze: backbone through fvc run: every backbone tensor (BatchNorm statistics included) is the weights
    file's, bit for bit, in every fold's model; the classifier learnt."""
    from fvc_core.training.predict import load_fold_model

    weights = _timm_weights(tmp_path, "resnet10t", seed=0)
    exp = experiment(tmp_path, video_table, {"name": "timm", "arch": "resnet10t", "weights": str(weights),
                                             "freeze": "backbone", "chunk_size": 3}, epochs=2, lr=1e-2)
    assert main(["run", str(exp)]) == 0
    published = load_file(str(weights))
    for k in (0, 1):
        trained = load_fold_model(tmp_path / "runs" / "timm" / f"fold_{k}").backbone.state_dict()
        differ = sorted(name for name, value in trained.items()
                        if not name.startswith("fc.") and not torch.equal(value, published[name]))
        assert differ == [], differ
        assert trained["fc.weight"].shape == (2, 512)  # the file's 1000-class head was replaced, then trained


def test_a_weights_file_that_is_not_there_stops_the_run_in_one_line(tmp_path, video_table, capsys):
    exp = experiment(tmp_path, video_table, {"name": "xception", "img_size": 32,
                                             "weights": str(tmp_path / "xception.pth")})
    assert main(["run", str(exp)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: model.weights: {tmp_path / 'xception.pth'}: no such file"]
