"""Which frames a clip holds, and how to reach them cheaply.

The sampling rule, by time (never by a frame count a header may get wrong):
``num_frames`` target times sit at the centres of ``num_frames`` equal slices
of the video's duration, and each target takes the frame *on screen* at that
time, i.e. the last frame whose presentation time is at or before it (the
first frame for a target before it). A video with fewer frames than targets
therefore repeats frames; a variable-frame-rate video is sampled evenly in
time, not in frames.

Reaching them: a decoder must start at a keyframe. When a keyframe lies
between two wanted frames far enough apart, seeking to it skips decoding
everything in between; otherwise decoding straight on is cheaper than a seek
(which flushes the decoder's pipeline). Within a run of decoding, frames that
can never be picked are shadowed by a later frame before the next target;
the decoder may skip those that are non-reference (``skip_frame=NONREF``).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

import numpy as np

# A seek pays a flush and a refill of the decoder's thread pipeline; below this
# many skipped frames, decoding straight on is as cheap.
MIN_FRAMES_SKIPPED_BY_SEEK = 8


def target_times(start: float, duration: float, num_frames: int) -> np.ndarray:
    """``num_frames`` times (same unit as ``start``/``duration``): centres of equal slices."""
    if num_frames < 1:
        raise ValueError("num_frames must be at least 1")
    return start + (np.arange(num_frames) + 0.5) * (duration / num_frames)


def pick_on_screen(frame_times: Sequence[float], targets: Sequence[float]) -> list[int]:
    """For each target, the index of the frame on screen then (frame_times ascending)."""
    picks = []
    for t in targets:
        i = int(np.searchsorted(frame_times, t, side="right")) - 1
        picks.append(max(i, 0))
    return picks


def is_shadowed(pts: float, later_pts: float, targets: Sequence[float]) -> bool:
    """True when a frame at ``pts`` can never be picked because one at ``later_pts`` > pts exists.

    It could only be picked by a target in ``[pts, later_pts)``; ``targets`` sorted.
    """
    if later_pts <= pts:
        return False
    i = bisect_left(targets, pts)
    return i == len(targets) or targets[i] >= later_pts


def plan_seeks(
    targets: Sequence[float],
    keyframe_before: Sequence[float | None],
    start: float,
    frame_duration: float,
    min_frames: int = MIN_FRAMES_SKIPPED_BY_SEEK,
) -> list[bool]:
    """Whether to seek to the keyframe before target ``k`` before decoding it.

    ``keyframe_before[k]`` is the presentation time of the last keyframe at or
    before ``targets[k]`` (None if unknown: then never seek). A seek pays off
    when that keyframe comes after the previous target (everything between is
    skipped) by at least ``min_frames`` frames.
    """
    seeks = []
    reached = start  # decoding has got (at least) this far without seeking
    for k, t in enumerate(targets):
        kf = keyframe_before[k]
        seek = kf is not None and kf - reached >= min_frames * frame_duration
        seeks.append(bool(seek))
        reached = t
    return seeks


# --- windows of consecutive frames (data.sampler: window) ----------------------------------------


def window_targets(starts: Sequence[float], clip_len: int, period: float, end: float) -> np.ndarray:
    """Target times ``(len(starts), clip_len)``: ``clip_len`` frames ``period`` apart from each start.

    Each target sits at the centre of its frame slot, as the uniform rule's do, and
    takes the frame on screen then: a rate above the video's repeats frames, one
    below drops them. Targets past ``end`` (a window longer than the video) are
    moved back to the last half period before it, so they repeat the last frame.
    """
    if clip_len < 1 or period <= 0:
        raise ValueError("clip_len must be at least 1 and period positive")
    times = np.asarray(starts, dtype=np.float64)[:, None] + (np.arange(clip_len) + 0.5) * period
    starts_floor = np.asarray(starts, dtype=np.float64)[:, None]
    return np.maximum(np.minimum(times, end - period / 2), starts_floor)


def even_window_starts(start: float, duration: float, span: float, count: int) -> np.ndarray:
    """``count`` window starts whose windows are centred on ``count`` equal slices of the video.

    Clamped so a window stays inside the video when it fits; a video shorter than
    ``span`` gives every window the same start, the video's own.
    """
    if count < 1:
        raise ValueError("count must be at least 1")
    centres = start + (np.arange(count) + 0.5) * (duration / count)
    return np.clip(centres - span / 2, start, start + max(duration - span, 0.0))


def random_window_start(start: float, duration: float, span: float, seed: int) -> float:
    """One window start drawn uniformly where a window of ``span`` fits, from ``seed`` alone."""
    # A stream of its own, apart from the augmentation's draws from the same seed.
    rng = np.random.default_rng([seed, 0x57A27])
    return float(start + rng.uniform(0.0, max(duration - span, 0.0)))
