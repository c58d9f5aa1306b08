"""The PyAV frame reader: clips of ``num_frames`` upright, letterboxed frames sampled by time.

``read_clip`` decodes frame by frame and converts only the frames it keeps
(see ``sampling`` for the rule and for how it chooses between seeking and
decoding straight on, ``letterbox`` for the conversion). At most one decoded
frame is held at full size; the clip is built at ``size`` x ``size``.

Every call opens its own container and closes it before returning: nothing
global is kept open, so it is safe in DataLoader worker processes.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

import av
import numpy as np

from fvc_core.contract import BadVideoError
from fvc_loaders.decoders import DEFAULT, Plan, Timeline, get_decoder
from fvc_loaders.letterbox import FrameConverter, clip_of, letterbox
from fvc_loaders.sampling import (
    DecodeCosts,
    even_window_starts,
    is_shadowed,
    plan_seeks,
    random_window_start,
    target_times,
    window_targets,
)

if TYPE_CHECKING:
    import torch

__all__ = [
    "VideoInfo",
    "VideoReadError",
    "iter_frames",
    "iter_letterboxed_frames",
    "letterbox",
    "probe",
    "read_clip",
    "read_pictures",
    "timeline",
    "read_windows",
]

log = logging.getLogger(__name__)

# Packets looked at ahead of the one being decoded, to tell whether its frame is
# shadowed by a later one; more than any B-frame reorder depth in practice.
LOOKAHEAD_PACKETS = 8

# Timestamps are rounded to the time base: a frame stamped up to half a tick
# after a target was meant to be on screen at it.
_HALF_TICK = 0.5

# Seconds converted back to ticks within this of a whole tick are put on it (float rounding only).
_SNAP_TICKS = 1e-6

# Seeking lands after the target when a keyframe is shown later than indexed;
# each retry starts 4x further back.
_SEEK_BACKOFFS = 3

# Packets read at open to find the first presentation time: AVI and raw streams
# give none in the header, and B-frames delay it past the first packet.
_PACKETS_FOR_START = 16

# Keyframe spacing is estimated from at most this many index entries (probe only).
_INDEX_ENTRIES_FOR_INTERVAL = 5000


class VideoReadError(BadVideoError):
    """A video that cannot be read: ``str()`` is one line, ``<path>: <reason>``."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video's first video stream (sizes are as stored)."""

    path: str
    codec: str
    width: int
    height: int
    duration_s: float
    frame_count: int | None
    fps: float
    rotation: int
    pix_fmt: str
    keyframe_interval: int | None


def probe(path: str | Path) -> VideoInfo:
    """Open ``path``, decode its first frame, and describe its video stream.

    Raises VideoReadError for a missing, empty, unreadable or video-less file.
    """
    with _open(path) as (container, stream):
        timing = _Timing.of(container, stream)
        keyframe_interval = _keyframe_interval(stream, timing.fps)  # from the index as opened, before reading
        first = _first_frame(path, container, stream)
        return VideoInfo(
            path=str(path),
            codec=stream.codec_context.name,
            width=stream.codec_context.width or first.width,
            height=stream.codec_context.height or first.height,
            duration_s=float(timing.duration * timing.time_base),
            frame_count=stream.frames or None,
            fps=float(timing.fps),
            rotation=int(first.rotation or 0),
            pix_fmt=first.format.name,
            keyframe_interval=keyframe_interval,
        )


def read_clip(
    path: str | Path, num_frames: int, size: int, *, augment_seed: int | None = None, decoder: str = DEFAULT
) -> torch.Tensor:
    """uint8 ``(num_frames, 3, size, size)``: frames sampled uniformly over the duration, letterboxed.

    Targets are the centres of ``num_frames`` equal slices of the duration; each
    takes the frame on screen at that time, so a short video repeats frames and
    the shape is always the same. If the file ends before its header says (a
    cut download), the clip is sampled over what is there. ``augment_seed``
    applies ``augment_clip`` with that seed; None leaves the frames as decoded.
    ``decoder`` names a ``decoders`` entry (data.decoder). Raises VideoReadError
    naming the file and the reason.
    """
    import torch

    if num_frames < 1 or size < 1:
        raise ValueError(f"num_frames and size must be positive, got {num_frames} and {size}")
    pictures = get_decoder(decoder).read(path, lambda tl: target_times(tl.start, tl.duration, num_frames), size)
    clip = torch.from_numpy(clip_of(pictures, size))
    if augment_seed is not None:
        from fvc_loaders.augment import augment_clip

        clip = augment_clip(clip, augment_seed)
    return clip


def read_windows(
    path: str | Path,
    clip_len: int,
    size: int,
    *,
    fps: float | None = None,
    count: int = 1,
    seed: int | None = None,
    augment_seed: int | None = None,
    decoder: str = DEFAULT,
) -> torch.Tensor:
    """uint8 ``(count, clip_len, 3, size, size)``: windows of ``clip_len`` frames at ``fps``, letterboxed.

    Frame ``i`` of a window starting at ``s`` is the frame on screen at
    ``s + (i + 0.5) / fps`` (None: the video's own average rate, i.e.
    consecutive frames), so a lower rate drops frames and a higher one repeats
    them, by timestamp, also in a variable-frame-rate video. ``seed`` None
    places the windows evenly (centred on ``count`` equal slices of the
    duration, as evaluation wants); an int draws each start uniformly where a
    window fits, from that seed alone (window ``j`` from ``seed + j``). A
    video shorter than a window repeats its last frame. Only the packets the
    windows need are decoded (a seek to the keyframe before each window when
    that skips enough). ``augment_seed`` applies one ``augment_clip`` draw to
    every window. Raises VideoReadError naming the file and the reason.
    """
    import torch

    if clip_len < 1 or size < 1 or count < 1:
        raise ValueError(f"clip_len, size and count must be positive, got {clip_len}, {size} and {count}")
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")

    def plan(tl: Timeline) -> np.ndarray:
        period = 1.0 / (fps or tl.fps)
        span = clip_len * period
        if seed is None:
            starts = even_window_starts(tl.start, tl.duration, span, count)
        else:
            starts = [random_window_start(tl.start, tl.duration, span, seed + j) for j in range(count)]
        return window_targets(starts, clip_len, period, tl.start + tl.duration)

    clip = torch.from_numpy(clip_of(get_decoder(decoder).read(path, plan, size), size))
    if augment_seed is not None:
        from fvc_loaders.augment import augment_clip

        clip = augment_clip(clip, augment_seed)
    return clip.reshape(count, clip_len, *clip.shape[1:])


def iter_letterboxed_frames(path: str | Path, size: int) -> Iterator[np.ndarray]:
    """Every frame of ``path`` in display order, upright, letterboxed: (size, size, 3) uint8.

    Raises VideoReadError when the file cannot be opened or no frame decodes;
    a file that breaks off later simply ends there.
    """
    with _open(path) as (container, stream):
        convert = FrameConverter(size, stream.sample_aspect_ratio)
        count = 0
        for frame in _decode(path, container, stream, _never):
            count += 1
            yield convert(frame)
        if count == 0:
            raise VideoReadError(path, "no frame could be decoded")


def iter_frames(path: str | Path, max_side: int | None = None) -> Iterator[np.ndarray]:
    """Every frame of ``path`` in display order, upright, at its display aspect without bars:
    (H, W, 3) uint8 RGB, scaled down so that its longer side is at most ``max_side`` (None: full size).

    Raises VideoReadError like ``iter_letterboxed_frames``.
    """
    with _open(path) as (container, stream):
        convert: FrameConverter | None = None
        count = 0
        for frame in _decode(path, container, stream, _never):
            if convert is None:
                convert = FrameConverter(1, stream.sample_aspect_ratio, bars=False)
                longest = round(max(convert.shown_size(frame)))
                convert.size = min(longest, max_side) if max_side else longest
            count += 1
            yield convert(frame)
        if count == 0:
            raise VideoReadError(path, "no frame could be decoded")


# --- sampling -----------------------------------------------------------------------------------


def timeline(path: str | Path) -> Timeline:
    """The video's timeline (seconds) as the reader samples it: the container's start and duration
    (measured from the packets where the container gives none). Other decoders use it so that the
    same plan gives the same target times."""
    with _open(path) as (container, stream):
        timing = _Timing.of(container, stream)
    if not timing.duration:
        timing = timing.with_duration(_demuxed_duration(path, timing))
    return timing.timeline()


def read_pictures(path: str | Path, plan: Plan, size: int) -> list[np.ndarray]:
    """The pyav decoder of ``decoders``: the pictures on screen at the times (seconds) ``plan`` gives.

    Upright, scaled to fit ``size`` x ``size``, not yet padded (``letterbox.clip_of`` pads them).
    """
    return _sample(path, size, plan)


def _sample(path: str | Path, size: int, plan: Plan) -> list[np.ndarray]:
    """The frames on screen at the times ``plan(timing)`` gives (stream ticks, any order): upright,
    scaled pictures, not yet padded (``letterbox.clip_of`` pads them into the clip)."""
    with _open(path) as (container, stream):
        timing = _Timing.of(container, stream)
        if not timing.duration:
            timing = timing.with_duration(_demuxed_duration(path, timing))
        targets = timing.ticks(plan(timing.timeline()))
        picked = _pick_in_order(path, container, stream, timing, targets, size)
    if len(picked) == len(targets):
        return picked
    # The file ended well before its header's duration (a cut download): sample
    # again, by the same rule, over the frames that are really there.
    real = _demuxed_duration(path, timing)
    log.warning("%s: video ends at %.3fs, before the %.3fs its header gives; sampling over what is there",
                path, float(real * timing.time_base), float(timing.duration * timing.time_base))
    timing = timing.with_duration(real)
    targets = timing.ticks(plan(timing.timeline()))
    with _open(path) as (container, stream):
        picked = _pick_in_order(path, container, stream, timing, targets, size)
    if not picked:
        raise VideoReadError(path, "no frame could be decoded")
    while len(picked) < len(targets):  # only if decoding stops short of the demuxed packets
        picked.append(picked[-1])
    return picked


def _pick_in_order(path, container, stream, timing: _Timing, targets: np.ndarray, size: int) -> list[np.ndarray]:
    """``_pick`` for targets in any order (overlapping windows): picked ascending, returned as given.

    Fewer frames than targets when the file stops short (then in ascending order).
    """
    order = np.argsort(targets, kind="stable")
    picked = _pick(path, container, stream, timing, [float(t) for t in targets[order]], size)
    if len(picked) < len(targets):
        return picked
    out: list[np.ndarray] = [picked[0]] * len(targets)
    for rank, i in enumerate(order):
        out[i] = picked[rank]
    return out


def _pick(path, container, stream, timing: _Timing, targets: list[float], size: int) -> list[np.ndarray]:
    """The frames on screen at each target time (ascending), converted; fewer when the file stops short."""
    num_frames = len(targets)
    seeks = plan_seeks(targets, _keyframes_before(stream, targets, timing), timing.start, timing.frame_duration,
                       _costs(stream))
    convert = FrameConverter(size, stream.sample_aspect_ratio).picture  # padded once, in the clip
    shadowed = _shadow_test(targets)
    tolerance = min(_HALF_TICK, timing.frame_duration / 16)
    picked: list[np.ndarray] = []
    prev = prev_image = None  # the last frame decoded, and its conversion once made

    k = 0
    sought = -1  # each target is sought once (plus a few back-offs), so this loop ends
    seek_to: tuple[float, int] | None = None  # (index timestamp, back-offs so far)
    while k < num_frames:
        if seek_to is None and seeks[k] and k > sought:
            seek_to = (targets[k] - timing.index_lag, 0)
        if seek_to is not None:
            _seek(path, container, stream, seek_to[0])
            sought = k
            prev = prev_image = None  # every earlier target is resolved
        frames = _decode(path, container, stream, shadowed, timing)
        try:
            for frame in frames:
                if seek_to is not None:
                    offset, backoffs = seek_to
                    seek_to = None
                    if frame.pts > targets[k] + tolerance and backoffs < _SEEK_BACKOFFS:
                        # Landed after the target: that keyframe is shown later than the
                        # index says (B-frame delay); start from an earlier one.
                        seek_to = (offset - timing.frame_duration * 4 ** (backoffs + 1), backoffs + 1)
                        break
                while k < num_frames and frame.pts > targets[k] + tolerance:
                    if prev is None:  # a target before the first frame takes the first frame
                        prev, prev_image = frame, None
                    if prev_image is None:
                        prev_image = convert(prev)
                    picked.append(prev_image)
                    k += 1
                if frame is not prev:
                    prev, prev_image = frame, None
                if k == num_frames or (seeks[k] and k > sought):
                    break  # done, or the next target is reached faster by seeking
            else:
                break  # end of file
        finally:
            frames.close()
    if k < num_frames and prev is not None:
        # Targets after the last frame take it while it is still on screen; later
        # ones mean the header promised more than the file holds.
        shown_until = prev.pts + (prev.duration or timing.frame_duration)
        if targets[-1] <= shown_until + tolerance:
            image = prev_image if prev_image is not None else convert(prev)
            picked.extend([image] * (num_frames - k))
    if not picked and prev is None:
        raise VideoReadError(path, "no frame could be decoded")
    return picked


def _costs(stream) -> DecodeCosts:
    codec = stream.codec_context
    return DecodeCosts.of(b_frames=bool(codec.has_b_frames), intra_only=bool(getattr(codec.codec, "intra_only", False)),
                          threads=_threads(codec))


def _threads(codec) -> int:
    """Frame threads the decoder runs: FFmpeg's automatic count is one per usable core plus one, at most 16."""
    if codec.thread_count:
        return int(codec.thread_count)
    return min(len(os.sched_getaffinity(0)) + 1, 16) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _shadow_test(targets):
    def shadowed(packet_pts: float, later_pts: float) -> bool:
        return is_shadowed(packet_pts, later_pts, targets)

    return shadowed


def _seek(path, container, stream, offset: float) -> None:
    """To the last keyframe at or before ``offset``, in the index's own timestamps (decode times in MP4)."""
    try:
        container.seek(int(np.floor(offset)), stream=stream, backward=True)
    except av.FFmpegError as error:
        raise VideoReadError(path, f"cannot seek: {_reason(error)}") from None


def _keyframes_before(stream, targets, timing: _Timing) -> list[float | None]:
    """Presentation time of the last indexed keyframe at or before each target (None: unknown)."""
    entries = stream.index_entries
    if len(entries) < 2:
        return [None] * len(targets)
    found: list[float | None] = []
    for t in targets:
        try:
            i = entries.search_timestamp(int(t - timing.index_lag), backward=True)
        except Exception:  # noqa: BLE001 - an index PyAV cannot search is an unknown one
            i = -1
        found.append(entries[i].timestamp + timing.index_lag if i >= 0 else None)
    return found


# --- decoding ------------------------------------------------------------------------------------


def _decode(path, container, stream, shadowed, timing: _Timing | None = None) -> Iterator[av.VideoFrame]:
    """Frames in display order from the container's current position to the end.

    ``shadowed(pts, later_pts)`` says when a packet's frame can never be used;
    the decoder is then allowed to skip it if no other frame refers to it (and
    an intra-only stream's shadowed packets are not decoded at all). Frames
    without a timestamp get one from the previous frame's. A file that breaks
    off ends the frames; an error before the first frame raises VideoReadError.
    """
    codec = stream.codec_context
    intra_only = bool(getattr(codec.codec, "intra_only", False))
    step = timing.frame_duration if timing else 1
    last_pts = None
    produced = 0
    first_error: av.FFmpegError | None = None
    pending: deque = deque()

    def frames_of(packet, skip: bool):
        nonlocal last_pts, produced, first_error
        if skip and intra_only:
            return
        mode = "NONREF" if skip else "DEFAULT"
        if codec.skip_frame != mode:
            codec.skip_frame = mode
        try:
            decoded = codec.decode(packet)
        except av.FFmpegError as error:
            # A damaged packet (often the cut-off last one) costs its own frame,
            # not the frames still in the decoder or after it, as in ffmpeg.
            first_error = first_error or error
            return
        for frame in decoded:
            if frame.pts is None:
                frame.pts = int(last_pts + step) if last_pts is not None else 0
            last_pts = frame.pts
            produced += 1
            yield frame

    def decide(i_packet) -> bool:
        pts = i_packet.pts
        if pts is None or i_packet.is_keyframe and not intra_only:
            return False
        later = [p.pts for p in pending if p.pts is not None and p.pts > pts]
        return bool(later) and shadowed(pts, min(later))

    packets = container.demux(stream)
    try:
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.FFmpegError as error:  # the file breaks off: decode what was read
                first_error = first_error or error
                break
            if packet.size == 0:  # the demuxer's end-of-stream marker; flushed below
                continue
            pending.append(packet)
            if len(pending) <= LOOKAHEAD_PACKETS:
                continue
            head = pending.popleft()
            yield from frames_of(head, decide(head))
        while pending:
            head = pending.popleft()
            yield from frames_of(head, decide(head))
        yield from frames_of(None, False)
    finally:
        codec.skip_frame = "DEFAULT"
    if first_error is not None:
        if produced == 0:
            raise VideoReadError(path, f"cannot decode: {_reason(first_error)}")
        log.debug("%s: skipped damaged data after %d frames: %s", path, produced, _reason(first_error))


def _never(pts: float, later_pts: float) -> bool:
    return False


def _first_frame(path, container, stream) -> av.VideoFrame:
    for frame in _decode(path, container, stream, _never):
        return frame
    raise VideoReadError(path, "no frame could be decoded")


def _demuxed_duration(path, timing: _Timing) -> float:
    """Duration up to the end of the last packet really in the file (stream time base)."""
    end = None
    count = 0
    with _open(path) as (container, stream):
        try:
            for packet in container.demux(stream):
                if packet.size == 0 or packet.is_corrupt:  # end marker; a cut-off last packet holds no frame
                    continue
                count += 1
                if packet.pts is not None:
                    tail = packet.pts + (packet.duration or timing.frame_duration)
                    end = tail if end is None else max(end, tail)
        except av.FFmpegError:
            pass  # a cut file: what was read so far is what there is
    if count == 0:
        raise VideoReadError(path, "no video packets in the file")
    if end is None:  # a raw stream without timestamps: frames are evenly spaced
        return count * timing.frame_duration
    return max(end - timing.start, timing.frame_duration)


# --- opening -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Timing:
    """A stream's timeline in its own time base (floats, to allow fractions of a tick)."""

    time_base: Fraction
    start: float
    duration: float  # 0 when the container does not say
    fps: Fraction
    frame_duration: float
    index_lag: float  # presentation minus index (decode) time of the first frame

    @classmethod
    def of(cls, container, stream) -> _Timing:
        tb = stream.time_base
        start = _first_pts(container, stream)
        if stream.duration:
            duration = stream.duration
        elif container.duration:
            duration = container.duration / av.time_base / tb - (start - _container_start(container, tb))
        else:
            duration = 0
        fps = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(25)
        entries = stream.index_entries
        lag = max(0, start - entries[0].timestamp) if len(entries) else 0
        return cls(tb, float(start), float(max(duration, 0)), Fraction(fps), float(1 / (fps * tb)), float(lag))

    def with_duration(self, duration: float) -> _Timing:
        return dataclasses.replace(self, duration=duration)

    def timeline(self) -> Timeline:
        tb = float(self.time_base)
        return Timeline(start=self.start * tb, duration=self.duration * tb, fps=float(self.fps))

    def ticks(self, seconds: np.ndarray) -> np.ndarray:
        """Times in seconds (any shape) as a flat array in this stream's time base.

        A time that lands on a tick up to float rounding is put on it: a target exactly at a frame's
        timestamp must pick that frame, and the shadowing test (``sampling.is_shadowed``) compares exactly.
        """
        ticks = np.ravel(np.asarray(seconds, dtype=np.float64)) / float(self.time_base)
        nearest = np.round(ticks)
        return np.where(np.abs(ticks - nearest) < _SNAP_TICKS, nearest, ticks)


def _first_pts(container, stream) -> float:
    """The first frame's presentation time.

    AVI carries no presentation times and reports a start of 0 while B-frames
    delay the first frame; raw streams report none. For those, the earliest
    time among the first packets settles it, read through a second, short-lived
    opening of the file so that the caller's position is untouched.
    """
    if stream.start_time is not None and "avi" not in container.format.name.split(","):
        return stream.start_time
    first = None
    try:
        with av.open(container.name, metadata_errors="replace") as peek:
            packets = peek.demux(peek.streams.video[0])  # the stream _open reads
            for i, packet in enumerate(packets):
                if packet.pts is not None:
                    first = packet.pts if first is None else min(first, packet.pts)
                if i + 1 >= _PACKETS_FOR_START:
                    break
    except av.FFmpegError:
        pass  # the decoder will report a file this broken
    if first is None:
        first = stream.start_time
    return first or 0


def _container_start(container, tb: Fraction) -> float:
    if container.start_time is None:
        return 0
    return container.start_time / av.time_base / tb


class _open:
    """Context manager: (container, first video stream), with one-line errors for bad input."""

    def __init__(self, path: str | Path):
        self.path = path

    def __enter__(self):
        path = Path(self.path)
        if not path.exists():
            raise VideoReadError(path, "file not found")
        if path.is_dir():
            raise VideoReadError(path, "is a folder, not a video file")
        if path.stat().st_size == 0:
            raise VideoReadError(path, "empty file (0 bytes)")
        try:
            self.container = av.open(str(path), metadata_errors="replace")
        except av.FFmpegError as error:
            raise VideoReadError(path, f"not a video file FFmpeg can read ({_reason(error)})") from None
        except (OSError, UnicodeDecodeError) as error:
            raise VideoReadError(path, f"cannot open: {error}") from None
        try:
            if not self.container.streams.video:
                kinds = sorted({s.type for s in self.container.streams})
                what = f"only {', '.join(kinds)}" if kinds else "no streams"
                raise VideoReadError(path, f"no video stream ({what})")
            stream = self.container.streams.video[0]
            if stream.codec_context is None:
                raise VideoReadError(path, f"no decoder for its video codec ({stream.codec.name})")
            stream.thread_type = "AUTO"  # frame + slice threads: the decoder keeps both cores busy
        except BaseException:
            self.container.close()
            raise
        return self.container, stream

    def __exit__(self, *exc) -> None:
        self.container.close()


def _reason(error: av.FFmpegError) -> str:
    """FFmpeg's message without the file name PyAV appends (the caller names the file)."""
    return str(getattr(error, "strerror", None) or error).strip().rstrip(".")


def _keyframe_interval(stream, fps: Fraction) -> int | None:
    """Typical frames from one keyframe to the next, from the container's index (None: no index)."""
    entries = stream.index_entries
    n = min(len(entries), _INDEX_ENTRIES_FOR_INTERVAL)
    keys = [entries[i].timestamp for i in range(n) if entries[i].is_keyframe]
    if len(keys) < 2:
        return None
    gap = float(np.median(np.diff(keys))) * stream.time_base * fps
    return max(1, round(gap))
