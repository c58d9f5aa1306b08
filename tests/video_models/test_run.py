"""An R(2+1)D network trained by `fvc run` on windows of consecutive frames of real encoded videos,
then used by `fvc predict`: the plugin, the loader's windows and the trainer fit together."""

from __future__ import annotations

import json

import pytest

from fvc_core.cli import main

pytest.importorskip("fvc_video_models")

from tests.builders import DROP, tiny_experiment, tiny_videos  # noqa: E402


def test_fvc_run_trains_r2plus1d_on_windows_and_predict_scores_with_it(tmp_path, capsys):
    tiny_experiment(tmp_path, tiny_videos(tmp_path / "videos", videos=4, seed=1), file="exp.yaml",
                    experiment=DROP, seed=DROP, output_dir="runs",
                    data={"num_frames": DROP, "sampler": "window", "clip_len": 4, "clips_per_video": 2},
                    model={"name": "r2plus1d", "chunk_size": DROP, "blocks": 1, "window": 2},
                    trainer={"warmup_epochs": 0, "batch_size": 2, "grad_accum": 1}, trackers=[])
    assert main(["run", str(tmp_path / "exp.yaml")]) == 0
    run = tmp_path / "runs" / "r2plus1d"
    protocol = json.loads((run / "run.json").read_text())
    assert "window" in json.dumps(protocol)
    for k in (0, 1):
        assert 0.0 <= json.loads((run / f"fold_{k}/metrics.json").read_text())["roc_auc"] <= 1.0
    fake = sorted((tmp_path / "videos" / "fake").glob("*.mp4"))[0]
    capsys.readouterr()
    assert main(["predict", str(run), str(fake), "-o", str(tmp_path / "scores.json")]) == 0
    [row] = json.loads((tmp_path / "scores.json").read_text())
    assert 0.0 <= row["score"] <= 1.0
