"""``--face-frames N``: detect only on the frames a run with ``data.sampler: uniform`` and
``data.num_frames: N`` reads from the face clips, and on the smoothing window around each.

The face clips are written at a constant frame rate, one picture per decoded source frame (frame i at
i / fps), so which frames the reader picks depends only on the clip's frame count: the targets at the
centres of N equal slices of its duration, each taking the frame on screen then (fvc_loaders.sampling,
the reader's own rule, called here rather than restated). Around each picked frame the detector also
runs on the ``(smoothing - 1) / 2`` frames each side, so the centred moving average a read frame's box is
(tracking.path) averages detections only, as with every frame detected; the frames between are
interpolated, as with ``--face-every``.

The frame count comes from demuxing the packets (no decoding); the decode pass that follows counts the
frames it really gets, and when the two differ (a stream whose packets are not one frame each), the
frames that are then read but were not checked are detected in a second pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def read_frames(tools: Any, count: int, num_frames: int) -> list[int]:
    """The frame indices ``read_clip(clip, num_frames, ...)`` takes from a clip of ``count`` frames
    (``tools``: what fvc prepare lends its steps; its ``target_times``/``pick_on_screen`` are the reader's)."""
    if count < 1:
        return []
    # Time in frames: the clip's frame i is shown from i to i + 1, its duration ``count``.
    times = tools.target_times(0.0, float(count), num_frames)
    return sorted(set(tools.pick_on_screen(np.arange(count, dtype=float), times)))


def frames_to_check(tools: Any, count: int, num_frames: int, smoothing: int) -> list[int]:
    """The read frames and the ``(smoothing - 1) / 2`` frames each side of them, within the clip."""
    half = (smoothing - 1) // 2
    return sorted({j for i in read_frames(tools, count, num_frames) for j in range(i - half, i + half + 1)
                   if 0 <= j < count})


def packet_count(path: str | Path) -> int:
    """The video stream's packets (one per frame for the usual codecs), read without decoding; 0 when
    the file cannot be demuxed (the decode pass then says why)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return sum(1 for packet in container.demux(stream) if packet.size)
    except (av.FFmpegError, IndexError, OSError):
        return 0
