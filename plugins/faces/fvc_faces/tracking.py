"""Per-frame detections to face tracks: linked through time, gaps bridged, smoothed, one box per frame.

A box here is (cx, cy, side): the centre and the side of the square around the detector's box (its longer
side), in the frame's pixels. Squares are what the crops are, and a centre and a side smooth better than
four corners.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from fvc_faces.detectors import Box

# A detection continues a track when their boxes overlap this much (intersection over union)...
MIN_IOU = 0.2
# ... or when its centre lies within this share of the track's side from the track's last centre.
MAX_CENTRE_SHIFT = 0.5
# A track not seen for this many checked frames ends: a face seen again later starts a new track.
MAX_GAP = 12
# Tracks seen on fewer checked frames than this share of the best-seen track's are dropped: a cascade's
# false positives (a pattern in the background) come and go, a face stays.
MIN_PRESENCE = 0.25


@dataclass
class Track:
    frames: list[int] = field(default_factory=list)
    boxes: list[tuple[float, float, float, float]] = field(default_factory=list)  # x0, y0, x1, y1
    # The five landmarks (ten numbers, x, y pairs) of each box, None where the detector gave none.
    marks: list[tuple[float, ...] | None] = field(default_factory=list)
    # Gaps are counted in checked frames (every N-th frame with --face-every N), not in video frames.
    last_check: int = 0

    @property
    def area(self) -> float:
        """The track's weight: the area of its boxes summed over the frames it was seen on."""
        return float(sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in self.boxes))


def _iou(a: Sequence[float], b: Sequence[float]) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _close(track_box: Sequence[float], box: Sequence[float]) -> bool:
    side = max(track_box[2] - track_box[0], track_box[3] - track_box[1])
    dx = (box[0] + box[2] - track_box[0] - track_box[2]) / 2
    dy = (box[1] + box[3] - track_box[1] - track_box[3]) / 2
    return (dx * dx + dy * dy) ** 0.5 <= MAX_CENTRE_SHIFT * side


def link(detections: Sequence[tuple[int, Sequence[Box]]]) -> list[Track]:
    """Tracks from ``(frame index, boxes)`` in frame order, each detection in at most one track.

    Greedy by overlap: the best-overlapping (track, detection) pairs are joined first, so two faces side
    by side keep their own tracks and a track never jumps to the other person while its own is seen.
    """
    tracks: list[Track] = []
    for position, (index, boxes) in enumerate(detections):
        live = [t for t in tracks if position - t.last_check <= MAX_GAP]
        pairs = []
        for ti, track in enumerate(live):
            for di, box in enumerate(boxes):
                overlap = _iou(track.boxes[-1], box)
                if overlap >= MIN_IOU or _close(track.boxes[-1], box):
                    pairs.append((overlap, -_distance(track.boxes[-1], box), ti, di))
        pairs.sort(reverse=True)
        used_tracks: set[int] = set()
        used_boxes: set[int] = set()
        for _, _, ti, di in pairs:
            if ti in used_tracks or di in used_boxes:
                continue
            used_tracks.add(ti)
            used_boxes.add(di)
            live[ti].frames.append(index)
            live[ti].boxes.append(tuple(float(v) for v in boxes[di][:4]))
            live[ti].marks.append(_marks(boxes[di]))
            live[ti].last_check = position
        for di, box in enumerate(boxes):
            if di not in used_boxes:
                tracks.append(Track([index], [tuple(float(v) for v in box[:4])], [_marks(box)], position))
    return tracks


def _marks(box: Sequence[float]) -> tuple[float, ...] | None:
    return tuple(float(v) for v in box[5:15]) if len(box) >= 15 else None


def _distance(a: Sequence[float], b: Sequence[float]) -> float:
    return float(np.hypot((a[0] + a[2] - b[0] - b[2]) / 2, (a[1] + a[3] - b[1] - b[3]) / 2))


def keep(tracks: list[Track]) -> list[Track]:
    """The tracks that are faces, largest first (see MIN_PRESENCE)."""
    if not tracks:
        return []
    most = max(len(t.frames) for t in tracks)
    kept = [t for t in tracks if len(t.frames) >= MIN_PRESENCE * most]
    return sorted(kept, key=lambda t: t.area, reverse=True)


def path(track: Track, frames: int, smoothing: int) -> np.ndarray:
    """(frames, 3) float array of (cx, cy, side) for every frame of the video.

    Between the frames the track was seen on, linear interpolation; before its first and after its last,
    its first and last box. Then a centred moving average over ``smoothing`` frames (odd; 1: none): frame
    t is the mean of frames t - h .. t + h, h = (smoothing - 1) // 2, which removes the detector's
    frame-to-frame jitter. Near the ends the window shrinks symmetrically (h = min(h, t, frames - 1 - t):
    the first frame is its own average): a padded window would drag a moving face's first boxes towards
    where it goes next.
    """
    if smoothing < 1 or smoothing % 2 == 0:
        raise ValueError(f"smoothing {smoothing}: a centred window has an odd number of frames")
    seen = np.asarray(track.frames, dtype=float)
    boxes = np.asarray(track.boxes, dtype=float)
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return _smooth(_fill(seen, np.stack([cx, cy, side], axis=1), frames), smoothing)


def landmarks_path(track: Track, frames: int, smoothing: int) -> np.ndarray | None:
    """(frames, 10) float array of the five landmarks (x, y pairs) for every frame, filled and smoothed
    through time exactly as ``path`` does the boxes; None when the detector gave no landmarks."""
    if smoothing < 1 or smoothing % 2 == 0:
        raise ValueError(f"smoothing {smoothing}: a centred window has an odd number of frames")
    seen = [(f, m) for f, m in zip(track.frames, track.marks, strict=True) if m is not None]
    if not seen:
        return None
    return _smooth(_fill(np.asarray([f for f, _ in seen], dtype=float),
                         np.asarray([m for _, m in seen], dtype=float), frames), smoothing)


def _fill(seen: np.ndarray, values: np.ndarray, frames: int) -> np.ndarray:
    """Every frame's values: linear between the frames seen, the first and last held before and after."""
    every = np.arange(frames, dtype=float)
    return np.stack([np.interp(every, seen, values[:, k]) for k in range(values.shape[1])], axis=1)


def _smooth(values: np.ndarray, smoothing: int) -> np.ndarray:
    """The centred moving average of ``path``'s docstring, column by column."""
    frames = len(values)
    half = (smoothing - 1) // 2
    if half < 1 or frames < 3:
        return values
    t = np.arange(frames)
    reach = np.minimum(half, np.minimum(t, frames - 1 - t))
    sums = np.concatenate([np.zeros((1, values.shape[1])), np.cumsum(values, axis=0)])
    return (sums[t + reach + 1] - sums[t - reach]) / (2 * reach + 1)[:, None]
