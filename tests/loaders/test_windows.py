"""data.sampler: window on real encoded files: which frames a window holds, where windows sit,
one reproducible random window per training epoch, several scored windows per video in evaluation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import polars as pl
import pytest
import torch

from fvc_core.errors import ConfigError
from tests.builders import DROP, tiny_experiment, tiny_videos
from tests.loaders.videos import index_of, make_video

reader = pytest.importorskip("fvc_loaders.reader")
from fvc_loaders.config import MetadataConfig  # noqa: E402
from fvc_loaders.dataset import MetadataDataset  # noqa: E402
from fvc_loaders.sampling import pick_on_screen, random_window_start, window_targets  # noqa: E402

from fvc_core.training.clips import mean_probability_logits, video_logits  # noqa: E402
from fvc_core.training.data import clip_seed  # noqa: E402

pytestmark = pytest.mark.usefixtures("two_core_decoder")


def indices(clip: torch.Tensor) -> list[int]:
    return [index_of(frame) for frame in clip]


@pytest.fixture(scope="module")
def second(tmp_path_factory):
    """24 frames at 24 fps: one second, frame i shown from i/24 s."""
    return make_video(tmp_path_factory.mktemp("w") / "second", frames=24, fps=24, width=48, height=32)


# --- which frames ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fps, expected", [
    (None, [10, 11, 12, 13]),   # the video's own rate: consecutive frames, centred on 0.5 s
    (12, [9, 11, 13, 15]),      # half the rate: every other frame dropped
    (48, [11, 11, 12, 12]),     # twice the rate: each frame repeated
])
def test_a_window_holds_the_frames_on_screen_at_its_rate(second, fps, expected):
    clip = reader.read_windows(second, 4, 32, fps=fps)
    assert clip.shape == (1, 4, 3, 32, 32) and clip.dtype == torch.uint8
    assert indices(clip[0]) == expected


def test_evaluation_windows_are_evenly_placed(second):
    clips = reader.read_windows(second, 4, 32, count=3)
    # Centred on the thirds of the second (4/24, 12/24, 20/24 s): starts 2, 10, 18.
    assert [indices(c) for c in clips] == [[2, 3, 4, 5], [10, 11, 12, 13], [18, 19, 20, 21]]


def test_overlapping_windows_each_hold_their_own_frames(second):
    clips = reader.read_windows(second, 8, 32, count=4)  # 4 x 8 frames out of 24: they overlap
    assert [indices(c) for c in clips] == [[0, 1, 2, 3, 4, 5, 6, 7], [5, 6, 7, 8, 9, 10, 11, 12],
                                            [11, 12, 13, 14, 15, 16, 17, 18], [16, 17, 18, 19, 20, 21, 22, 23]]


def test_a_window_longer_than_the_video_repeats_its_last_frame(tmp_path):
    path = make_video(tmp_path / "short", frames=5, fps=24)
    assert indices(reader.read_windows(path, 8, 32)[0]) == [0, 1, 2, 3, 4, 4, 4, 4]


def test_variable_frame_rate_windows_pick_by_timestamp(tmp_path):
    # A burst 10 ms apart, two long stills, another burst; the window runs at 10 fps.
    pts_ms = [0, 10, 20, 30, 40, 400, 800, 810, 820, 830, 840, 850]
    path = make_video(tmp_path / "vfr", pts_ms=pts_ms, fps=100)
    # 0.86 s long, a 0.4 s window centred: targets at 280, 380, 480, 580 ms.
    assert indices(reader.read_windows(path, 4, 32, fps=10)[0]) == [4, 4, 5, 5]
    # 50 fps over the second burst (window 0.16 s placed at random): frames by timestamp, never by count.
    for seed in range(4):
        start = random_window_start(0, 860, 160, seed)
        expected = pick_on_screen(pts_ms, window_targets([start], 8, 20, 860)[0])
        assert indices(reader.read_windows(path, 8, 32, fps=50, seed=seed)[0]) == expected


def test_only_what_the_window_needs_is_decoded(tmp_path, decoded):
    path = make_video(tmp_path / "gop10", frames=120, width=48, height=32, gop=10)
    clip = reader.read_windows(path, 4, 32)
    assert [i % 28 for i in range(58, 62)] == indices(clip[0])
    assert len(decoded) <= 4 + 10  # from the keyframe before the window to its end, of 120


# --- through the dataset: training and evaluation reads -----------------------------------------------


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    root = tmp_path_factory.mktemp("t")
    make_video(root / "a", frames=28, fps=24, width=48, height=32)  # 28 distinct frame indices
    make_video(root / "b", frames=28, fps=24, width=48, height=32)
    pl.DataFrame({"video_path": ["a.mp4", "b.mp4"], "label": [0, 1]}).write_parquet(root / "m.parquet")
    return root / "m.parquet"


def window_dataset(table, **keys) -> MetadataDataset:
    return MetadataDataset(MetadataConfig(metadata=table, sampler="window", size=32, **keys))


def test_one_random_window_per_epoch_the_same_on_a_rerun(table):
    dataset = window_dataset(table, clip_len=4)
    video = str(table.parent / "a.mp4")
    windows = []
    for epoch in range(6):
        seed = clip_seed(7, 0, epoch, 0)  # what the trainer passes: seed, fold, epoch, video
        clip = dataset.read_video(video, augment=True, seed=seed)
        assert clip.shape == (4, 3, 32, 32)
        picked = indices(clip)
        assert picked == list(range(picked[0], picked[0] + 4))  # consecutive frames
        assert torch.equal(clip, dataset.read_video(video, augment=True, seed=seed))  # rerun, resume
        windows.append(picked[0])
    assert len(set(windows)) >= 3  # the window moves across epochs


def test_evaluation_reads_stack_evenly_placed_windows(table):
    video = str(table.parent / "a.mp4")
    one = window_dataset(table, clip_len=4).read_video(video)
    assert one.shape == (4, 3, 32, 32) and indices(one) == [12, 13, 14, 15]
    clips = window_dataset(table, clip_len=4, clips_per_video=2).read_video(video)
    assert clips.shape == (2, 4, 3, 32, 32)
    assert [indices(c) for c in clips] == [[5, 6, 7, 8], [19, 20, 21, 22]]


def test_protocol_records_the_window_and_its_aggregation(table):
    protocol = window_dataset(table, clip_len=8, fps=12.5, clips_per_video=3).protocol()
    assert protocol["sampler"] == "window" and protocol["num_frames"] == protocol["clip_len"] == 8
    assert protocol["fps"] == 12.5 and protocol["clips_per_video"] == 3
    assert protocol["clip_aggregation"] == "mean fake probability"
    assert window_dataset(table, clip_len=8).protocol()["fps"] == "video"


@pytest.mark.parametrize("keys, message", [
    (dict(clip_len=4), "data: clip_len applies only to sampler: window"),
    (dict(sampler="window"), "data: sampler: window needs clip_len"),
    (dict(sampler="window", clip_len=4, num_frames=8), "data: num_frames applies only to sampler: uniform"),
    (dict(sampler="window", clip_len=4, fps=0), "data.fps: Input should be greater than or equal to 0.1"),
])
def test_keys_of_the_other_sampler_are_refused_in_one_line(table, keys, message):
    from fvc_core.config import resolve

    data = {"name": "metadata", "metadata": str(table), **keys}
    with pytest.raises(ConfigError) as err:
        resolve({"experiment": "x", "data": data, "model": {"name": "naive_cnn"}})
    assert any(p.startswith(message) for p in err.value.problems), err.value.problems


def test_a_uniform_experiment_switches_to_windows_from_the_command_line(table):
    # The YAML sets num_frames; `data.num_frames=null` drops it, as a sweep over samplers needs.
    from fvc_core.config import apply_overrides, resolve

    base = {"experiment": "x", "model": {"name": "naive_cnn"},
            "data": {"name": "metadata", "metadata": str(table), "num_frames": 8}}
    window = ["data.sampler=window", "data.clip_len=4"]
    with pytest.raises(ConfigError, match="num_frames=null drops it"):
        resolve(apply_overrides(base, window))
    switched = resolve(apply_overrides(base, [*window, "data.num_frames=null"]))
    assert switched.data.config.sampler == "window" and switched.data.config.frames_per_clip == 4
    written = {**base, "data": {"name": "metadata", "metadata": str(table), "sampler": "window", "clip_len": 4}}
    assert switched.hash() == resolve(written).hash()


# --- several windows, one score ------------------------------------------------------------------------


def test_mean_probability_logits_give_back_the_mean_probability():
    logits = torch.tensor([[[2.0, -1.0], [0.0, 3.0], [-20.0, 30.0]]])
    mean = torch.softmax(logits, 2).mean(1)
    torch.testing.assert_close(torch.softmax(mean_probability_logits(logits), 1), mean)
    single = torch.tensor([[4.0, -2.0, 40.0]])
    torch.testing.assert_close(torch.sigmoid(mean_probability_logits(single)), torch.sigmoid(single).mean(1))


def test_video_logits_score_each_window_with_the_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(1), torch.nn.Linear(2 * 3 * 4 * 4, 2))
    videos = torch.rand(3, 5, 2, 3, 4, 4)  # 3 videos, 5 windows of 2 frames
    per_window = torch.stack([torch.softmax(model(videos[:, k]), 1) for k in range(5)], 1).mean(1)
    torch.testing.assert_close(torch.softmax(video_logits(model, videos), 1), per_window)
    plain = videos[:, 0]
    assert torch.equal(video_logits(model, plain), model(plain))


def test_a_run_scores_each_video_as_the_mean_of_its_windows(tmp_path):
    from fvc_core.training import load_fold_model

    pytest.importorskip("fvc_naive_cnn")
    table_path = tiny_videos(tmp_path / "videos", videos=4, frames=12, seed=1)
    tiny_experiment(tmp_path, table_path, file="e.yaml", experiment="w",
                    data={"num_frames": DROP, "sampler": "window", "clip_len": 4, "clips_per_video": 2},
                    model={"chunk_size": DROP}, trainer={"grad_accum": DROP, "warmup_epochs": 0})
    env = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "fvc_core.cli", "run", str(tmp_path / "e.yaml")],
                          capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    run_dir = tmp_path / "out/naive_cnn"
    protocol = json.loads((run_dir / "run.json").read_text())["protocol"]
    assert protocol["sampler"] == "window" and protocol["clip_aggregation"] == "mean fake probability"

    model = load_fold_model(run_dir / "fold_0")
    preds = pl.read_parquet(run_dir / "fold_0/predictions.parquet")
    with torch.no_grad():
        for path, score in preds.select("video_path", "score").iter_rows():
            windows = reader.read_windows(path, 4, 32, count=2)
            each = [float(torch.softmax(model(w.unsqueeze(0)).float(), 1)[0, 1]) for w in windows]
            assert score == pytest.approx(sum(each) / 2, abs=1e-5)

    # fvc predict rebuilds the dataset from config.yaml (every key written out) and scores alike.
    from fvc_core.training import score_videos

    scores = score_videos(run_dir, preds["video_path"].to_list())
    np.testing.assert_allclose(scores["score_fold_0"].to_numpy(), preds["score"].to_numpy(), rtol=1e-5, atol=1e-6)
