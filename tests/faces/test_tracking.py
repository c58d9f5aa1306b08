"""Detections to tracks: jitter smoothed without lag, gaps bridged, no jump to the other person."""

from __future__ import annotations

import numpy as np
from fvc_faces import tracking


def box(cx: float, cy: float, side: float) -> tuple[float, float, float, float, float]:
    return cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2, 1.0


def test_smoothing_removes_jitter_but_not_the_motion():
    rng = np.random.default_rng(0)
    truth = np.array([[50 + 3 * i, 80, 60] for i in range(40)], dtype=float)
    noisy = truth + rng.normal(0, 3, truth.shape)
    detections = [(i, [box(*row)]) for i, row in enumerate(noisy)]
    [track] = tracking.keep(tracking.link(detections))

    raw = tracking.path(track, 40, smoothing=1)
    smooth = tracking.path(track, 40, smoothing=7)
    assert np.allclose(raw, noisy)
    jitter = lambda p: np.abs(np.diff(p[:, 1])).mean()  # noqa: E731 (the centre's height should not move)
    assert jitter(smooth) < jitter(raw) / 2
    # A face moving steadily is followed, ends included (no pull towards the middle).
    assert np.abs(smooth - truth).max() < np.abs(raw - truth).max()
    # Steady motion without noise comes out exactly: symmetric windows have no lag, at the ends too.
    [clean] = tracking.link([(i, [box(*row)]) for i, row in enumerate(truth)])
    assert np.allclose(tracking.path(clean, 40, smoothing=7), truth)


def test_a_missed_face_is_bridged_and_the_track_does_not_jump_to_the_other_face():
    left, right = box(60, 100, 50), box(200, 100, 70)
    # The left face is missed on frames 3-5: its track waits, it does not take the right face's box.
    detections = [(i, [right] if 3 <= i <= 5 else [left, right]) for i in range(10)]
    tracks = tracking.keep(tracking.link(detections))
    assert len(tracks) == 2
    big, small = (tracking.path(t, 10, smoothing=5) for t in tracks)
    assert np.allclose(big[:, 0], 200) and np.allclose(small[:, 0], 60)
    assert tracks[1].frames == [0, 1, 2, 6, 7, 8, 9]


def test_a_short_lived_false_detection_is_dropped():
    face, blip = box(100, 100, 60), box(250, 40, 30)
    detections = [(i, [face, blip] if i == 4 else [face]) for i in range(12)]
    tracks = tracking.keep(tracking.link(detections))
    assert len(tracks) == 1 and len(tracks[0].frames) == 12
