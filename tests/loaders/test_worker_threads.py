"""A prepare worker is one core: torch and OpenCV each run one thread in it, so -j N workers do not
fight over the machine's cores (OpenCV's pool ignores OMP_NUM_THREADS and took every core)."""

from __future__ import annotations

from fvc_loaders.parallel import map_with_progress


def thread_counts(state: object, item: int) -> tuple[int, int]:
    import cv2
    import torch

    return cv2.getNumThreads(), torch.get_num_threads()


def test_each_worker_runs_torch_and_opencv_on_one_thread():
    results = dict(map_with_progress(thread_counts, None, [0, 1], workers=2, description="threads"))
    assert results == {0: (1, 1), 1: (1, 1)}
