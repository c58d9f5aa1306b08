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
from dataclasses import dataclass

import numpy as np

# What a seek costs beyond the frames it decodes, in decoded inter frames of the
# file (measured on x264 files of 480p to 1080p, benchmarks/loader_decode.py): the
# demuxer's seek and the decoder's flush, plus one frame per decoding thread, whose
# pipeline runs empty and refills.
SEEK_OVERHEAD_FRAMES = 3.0

# Share of the frames passed over while decoding straight on that are decoded: all
# of them without B-frames; with B-frames about half (x264 and x265 make one B-frame
# of each run a reference; the others are dropped when no target needs them).
DECODED_SHARE_WITH_B_FRAMES = 0.5
# An intra-only stream (MJPEG) does not decode a frame no target needs at all: only
# the packet is read.
DECODED_SHARE_INTRA_ONLY = 0.02
# ... and its seek costs about as much as reading this many packets.
INTRA_ONLY_SEEK_PACKETS = 5


@dataclass(frozen=True)
class DecodeCosts:
    """What reaching a frame costs in one file, in units of one decoded inter frame."""

    seek: float
    """A seek, beyond the frames from the keyframe on (decoded either way)."""
    passed_frame: float
    """A frame between two targets that decoding straight on passes over."""

    @classmethod
    def of(cls, *, b_frames: bool, intra_only: bool, threads: int) -> DecodeCosts:
        if intra_only:  # no decoder pipeline to refill: a seek costs the demuxer's few packet reads
            return cls(seek=INTRA_ONLY_SEEK_PACKETS * DECODED_SHARE_INTRA_ONLY, passed_frame=DECODED_SHARE_INTRA_ONLY)
        share = DECODED_SHARE_WITH_B_FRAMES if b_frames else 1.0
        return cls(seek=SEEK_OVERHEAD_FRAMES + max(threads, 1), passed_frame=share)


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
    costs: DecodeCosts,
) -> list[bool]:
    """Whether to seek to the keyframe before target ``k`` before decoding it.

    ``keyframe_before[k]`` is the presentation time of the last keyframe at or
    before ``targets[k]`` (None if unknown: then never seek). Frames from that
    keyframe to the target are decoded either way; a seek skips the ones between
    the previous target and the keyframe, so it pays when passing over those
    costs more than the seek itself (``costs``, this file's).
    """
    seeks = []
    reached = start  # decoding has got (at least) this far without seeking
    for k, t in enumerate(targets):
        kf = keyframe_before[k]
        seek = kf is not None and kf > reached and (kf - reached) / frame_duration * costs.passed_frame > costs.seek
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
