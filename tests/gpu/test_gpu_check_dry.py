"""benchmarks/gpu_check.py --dry: every section of the GPU check runs its code path at tiny sizes on
this CPU, so the check is ready the moment a GPU is lent (docs/gpu.md). Run as the user runs it:
a subprocess, the JSON it writes read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("env", "step", "data", "train_naive_cnn", "train_timm", "train_r2plus1d", "decode", "ray")


def test_dry_run_measures_or_skips_every_section(tmp_path):
    out = tmp_path / "check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("OUT", None)
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry", "--out", str(out),
                           "--work", str(tmp_path / "work")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(out.read_text())
    sections = report["sections"]
    assert list(sections) == list(SECTIONS)
    for name, section in sections.items():
        assert section["status"] in ("measured", "skipped"), (name, section)
        if section["status"] == "skipped":
            assert section["reason"], name
    # What runs on any CPU is measured, not skipped.
    for name in ("env", "step", "data", "train_naive_cnn", "train_timm", "train_r2plus1d", "decode"):
        assert sections[name]["status"] == "measured", (name, sections[name])
    step = sections["step"]["precisions"]
    assert step["fp32"]["finite"] and step["bf16"]["finite"] and step["bf16"]["close_to_fp32"]
    assert step["fp16"]["status"] == "skipped" and "CUDA" in step["fp16"]["reason"]
    assert len(step["fp32"]["losses"]) == len(step["bf16"]["losses"]) > 0
    assert sections["data"]["clips_per_second_one_worker"] > 0
    for name in ("train_naive_cnn", "train_timm", "train_r2plus1d"):
        train = sections[name]
        assert len(train["epochs"]) == 2, train
        assert 0 <= train["data_wait_share"] < 1
        assert train["gpu_busy"] is None and "CUDA" in train["gpu_busy_reason"]
    assert sections["decode"]["pyav_cpu"]["frames_per_second"] > 0
    if sections["ray"]["status"] == "measured":
        assert sections["ray"]["folds_done"] == ["fold_0", "fold_1"]
    # The table is printed too, one row per section at least.
    for name in SECTIONS:
        assert name in done.stdout


def test_dry_run_of_the_face_crop_section_trains_fvc_timm(tmp_path):
    """train_timm's path: fvc prepare --faces, then a one-fold run of fvc-timm's model on the crops
    (a small architecture here; efficientnet_b4 on the device)."""
    out = tmp_path / "check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("OUT", None)
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry", "--out", str(out),
                           "--work", str(tmp_path / "work"), "--only", "train_timm", "--timm-arch", "resnet10t"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    timm = json.loads(out.read_text())["sections"]["train_timm"]
    assert timm["status"] == "measured", timm
    assert timm["model"] == {"name": "timm", "arch": "resnet10t", "chunk_size": 2} and len(timm["epochs"]) == 2
    assert (tmp_path / "work" / "prepared_faces" / "official_split.parquet").exists()
