"""`fvc explain` on a real tiny run: per-frame scores of each fold model and Grad-CAM maps."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fvc_core.errors import UserError
from fvc_core.training import load_fold_model
from tests.builders import DROP, fvc, tiny_experiment, tiny_videos


def a_fake(run: Path) -> Path:
    return sorted((run.parent.parent / "videos/fake").glob("src_*.mp4"))[0]


def test_explain_writes_frame_scores_and_a_gradcam_picture_per_fold(tiny_run, tmp_path):
    video = a_fake(tiny_run)
    done = fvc("explain", str(tiny_run), str(video), "-o", str(tmp_path / "why"))
    assert done.returncode == 0, done.stdout + done.stderr
    names = sorted(p.name for p in (tmp_path / "why").iterdir() if p.name != ".fvc-owned")
    assert names == [f"{video.stem}_frame_scores.png", f"{video.stem}_gradcam_fold_0.png",
                     f"{video.stem}_gradcam_fold_1.png"]
    for name in names:
        Image.open(io.BytesIO((tmp_path / "why" / name).read_bytes())).verify()


def test_explain_never_writes_into_a_folder_of_someone_elses_files(tiny_run, tmp_path):
    video = a_fake(tiny_run)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / f"{video.stem}_gradcam_fold_0.png").write_text("my own picture")
    done = fvc("explain", str(tiny_run), str(video), "-o", str(mine))
    assert done.returncode == 2 and "holds files fvc did not make" in done.stderr, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    assert [p.name for p in mine.iterdir()] == [f"{video.stem}_gradcam_fold_0.png"]
    assert (mine / f"{video.stem}_gradcam_fold_0.png").read_text() == "my own picture"
    # A folder an earlier fvc explain filled (its figures only, no marker yet) is written again.
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for name in ("other_frame_scores.png", "other_gradcam_fold_0.png", "other_gradcam_fold_1.png"):
        (earlier / name).write_bytes(b"old")
    done = fvc("explain", str(tiny_run), str(video), "-o", str(earlier))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (earlier / f"{video.stem}_frame_scores.png").is_file()


def test_frame_scores_are_the_models_own_and_each_frame_gets_its_map(tiny_run):
    from fvc_report.explain import frame_scores_and_cams

    from fvc_core import open_run

    clip = torch.as_tensor(open_run(tiny_run).dataset().read_video(str(a_fake(tiny_run)))).unsqueeze(0)
    model = load_fold_model(tiny_run / "fold_0")
    scores, cams = frame_scores_and_cams(model, clip)
    with torch.no_grad():
        expected = torch.softmax(model.frame_logits(clip)[0], dim=1)[:, 1].numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
    assert cams is not None and cams.shape[0] == clip.shape[1] == 4  # one map per frame, across 2 chunks
    assert cams.min() >= 0 and np.allclose(cams.reshape(4, -1).max(1), 1.0)
    # Each chunk of 2 frames alone (one call of the layer, nothing to order) gives the maps the whole
    # clip gives for those frames: the maps sit on their own frames.
    by_chunk = np.concatenate([frame_scores_and_cams(model, clip[:, s:s + 2])[1] for s in (0, 2)])
    np.testing.assert_allclose(cams, by_chunk, rtol=1e-4, atol=1e-5)
    # The chunked model (recomputed in backward) gives the maps of the same model run with plain autograd.
    model.train_memory = "unbounded"
    _, plain = frame_scores_and_cams(model, clip)
    np.testing.assert_allclose(cams, plain, rtol=1e-4, atol=1e-5)
    assert all(p.grad is None for p in model.parameters())  # the model is left as it was


def test_a_model_without_frame_logits_is_told_so_in_one_line():
    from fvc_report.explain import frame_scores_and_cams

    class VideoOnly(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3)

        def forward(self, x):
            return self.conv(x.flatten(0, 1).float()).mean((2, 3)).reshape(x.shape[0], -1, 2).mean(1)

    with pytest.raises(UserError, match="VideoOnly does not expose frame logits") as info:
        frame_scores_and_cams(VideoOnly(), torch.zeros(1, 4, 3, 8, 8, dtype=torch.uint8))
    assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def window_run(tmp_path_factory) -> Path:
    """A real run reading windows: data.sampler window, clip_len 4, two evenly placed windows per video."""
    root = tmp_path_factory.mktemp("windows")
    experiment = tiny_experiment(root, tiny_videos(root / "videos", seed=4), file="exp.yaml", experiment="win", seed=2,
                                 data={"num_frames": DROP, "sampler": "window", "clip_len": 4, "clips_per_video": 2})
    done = fvc("run", str(experiment))
    assert done.returncode == 0, done.stdout + done.stderr
    return root / "out/naive_cnn"


def test_several_windows_per_video_are_explained_window_by_window(window_run, tmp_path):
    import polars as pl
    from fvc_loaders.reader import read_windows
    from fvc_report.explain import explain

    video = a_fake(window_run)
    done = fvc("explain", str(window_run), str(video), "-o", str(tmp_path / "why"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted(p.name for p in (tmp_path / "why").iterdir() if p.name != ".fvc-owned") == [
        f"{video.stem}_frame_scores.png", f"{video.stem}_gradcam_fold_0.png", f"{video.stem}_gradcam_fold_1.png"]

    result = explain(window_run, video)
    windows = read_windows(video, 4, 32, count=2)  # the two windows evaluation scores
    assert result["clip"].shape[:2] == (2, 4) and np.array_equal(result["clip"], windows.numpy())
    for k, fold in result["folds"].items():
        model = load_fold_model(window_run / f"fold_{k}")
        with torch.no_grad():
            each = [torch.softmax(model.frame_logits(w.unsqueeze(0))[0], dim=1)[:, 1].numpy() for w in windows]
        np.testing.assert_allclose(fold["scores"], np.stack(each), rtol=1e-5, atol=1e-6)
        assert fold["cams"].shape[:2] == (2, 4)  # a map for every frame of every window
    # The video's score is the one its own fold gave it in the run: the mean of its windows' probabilities.
    tested = [k for k in result["folds"]
              if str(video.resolve()) in pl.read_parquet(window_run / f"fold_{k}/predictions.parquet")["video_path"]]
    assert len(tested) == 1
    predictions = pl.read_parquet(window_run / f"fold_{tested[0]}/predictions.parquet")
    recorded = predictions.filter(pl.col("video_path") == str(video.resolve()))["score"][0]
    assert result["folds"][tested[0]]["video_score"] == pytest.approx(recorded, abs=1e-5)
