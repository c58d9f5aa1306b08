"""The arithmetic of the GPU check's NVML figures, which a CPU machine never samples: the busy share
keeps only samples inside the training passes (each pass's first settle seconds left out), and the
GPUs in use are those some process computed on."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(spec)
sys.modules.setdefault("gpu_check", gpu_check)  # its dataclasses look their module up there
spec.loader.exec_module(gpu_check)


def sampled(samples):
    nvml = object.__new__(gpu_check.Nvml)  # no NVML here: only what was sampled
    nvml.samples = samples
    return nvml


def test_busy_share_counts_only_samples_inside_the_passes():
    samples = [(t / 10, 0, 100 if 10 <= t < 30 else 0, []) for t in range(50)]  # busy from 1.0 s to 3.0 s
    samples += [(t / 10, 1, 100, []) for t in range(50)]  # another GPU, always busy: not counted
    nvml = sampled(samples)
    assert nvml.busy_share([(1.0, 2.9)], settle=0.0) == pytest.approx(1.0)
    assert nvml.busy_share([(0.0, 3.9)], settle=0.0) == pytest.approx(20 / 40)
    # The first half second of a pass is left out: NVML's figure covers the period before it.
    assert nvml.busy_share([(0.5, 2.9)], settle=0.5) == pytest.approx(1.0)
    assert nvml.busy_share([(10.0, 11.0)]) is None


def test_gpus_used_are_those_a_process_computed_on():
    nvml = sampled([(0.0, 0, 50, [11]), (0.1, 1, 0, []), (0.2, 0, 50, [11, 12]), (0.3, 2, 90, [13])])
    assert nvml.gpus_used_by() == {0: [11, 12], 2: [13]}
