"""Small real video files for tests, encoded with PyAV.

Every frame says which frame it is: its background is a flat grey whose level
encodes the frame index (``frame_level``), so a test can read back which
timestamps a sampler picked (``index_of``), even after lossy coding and
resizing. A white square marks one corner of the *upright* picture, so a test
can check that rotation metadata was honoured (``marker_corner``).

Import it as ``from tests.loaders.videos import make_video`` (``tests`` is a
package, so pytest puts the repository root on ``sys.path``).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Index i is drawn as grey level BASE + i * STEP; lossy codecs move a flat grey by a
# few levels at most, so a step of 8 reads back exactly for up to MAX_FRAMES frames.
LEVEL_BASE = 20
LEVEL_STEP = 8
MAX_INDEXED_FRAMES = 28
MARKER_LEVEL = 255

CORNERS = ("top_left", "top_right", "bottom_left", "bottom_right")

# Encoder name -> the container it is written into by default.
DEFAULT_SUFFIX = {
    "libx264": ".mp4",
    "libx265": ".mp4",
    "libvpx-vp9": ".webm",
    "mjpeg": ".avi",
    "mpeg4": ".avi",
}


def frame_level(index: int) -> int:
    """The background grey level of frame ``index`` (wraps after MAX_INDEXED_FRAMES)."""
    return LEVEL_BASE + (index % MAX_INDEXED_FRAMES) * LEVEL_STEP


def index_of(frame: np.ndarray) -> int:
    """The frame index drawn in ``frame`` (HxWx3, HxW or 3xHxW, uint8).

    Reads the median of the picture's central band, away from the corner marker
    and from letterbox padding.
    """
    gray = _as_gray(frame)
    h, w = gray.shape
    # A horizontal band through the middle: letterboxing pads top/bottom or
    # left/right, so keep to the middle third both ways.
    centre = gray[h // 3 : h - h // 3, w // 3 : w - w // 3]
    level = float(np.median(centre))
    return int(round((level - LEVEL_BASE) / LEVEL_STEP))


def marker_corner(frame: np.ndarray) -> str:
    """Which corner of ``frame`` holds the white marker (one of CORNERS).

    Compares the four quadrants, so letterbox padding (black, the same on
    opposite sides) does not matter.
    """
    gray = _as_gray(frame).astype(np.float64)
    h, w = gray.shape
    quads = {
        "top_left": gray[: h // 2, : w // 2],
        "top_right": gray[: h // 2, w - w // 2 :],
        "bottom_left": gray[h - h // 2 :, : w // 2],
        "bottom_right": gray[h - h // 2 :, w - w // 2 :],
    }
    return max(quads, key=lambda k: quads[k].mean())


def upright_frame(index: int, width: int, height: int, corner: str = "top_left") -> np.ndarray:
    """The picture a viewer should see for frame ``index``: HxWx3 uint8 RGB."""
    img = np.full((height, width, 3), frame_level(index), dtype=np.uint8)
    m = max(2, min(width, height) // 4)
    rows = slice(0, m) if corner.startswith("top") else slice(height - m, height)
    cols = slice(0, m) if corner.endswith("left") else slice(width - m, width)
    img[rows, cols] = MARKER_LEVEL
    return img


def make_video(
    path: str | Path,
    *,
    codec: str = "libx264",
    width: int = 96,
    height: int = 64,
    frames: int = 12,
    fps: int | Fraction = 24,
    pix_fmt: str | None = None,
    gop: int | None = None,
    bframes: int | None = None,
    rotation: int = 0,
    pts_ms: Sequence[int] | None = None,
    audio: bool = False,
    faststart: bool = False,
    options: dict[str, str] | None = None,
    corner: str = "top_left",
) -> Path:
    """Encode a small video whose frames carry their index and a corner marker.

    ``width``/``height`` are the *upright* size. ``rotation`` (degrees, a
    multiple of 90) is written as display-matrix metadata, meaning "rotate the
    stored picture this much counter-clockwise to show it" (FFmpeg's
    convention); the stored pictures are turned the other way, so a reader
    that honours the metadata sees the marker in ``corner``.

    ``pts_ms`` gives each frame's presentation time in milliseconds (variable
    frame rate); otherwise frames are evenly spaced at ``fps`` (a Fraction such as 30000/1001 too). ``faststart``
    puts the MP4 index before the data, so a truncated copy still has a header
    promising every frame. Returns the path.
    """
    path = Path(path)
    if path.suffix == "":
        path = path.with_suffix(DEFAULT_SUFFIX.get(codec, ".mp4"))
    if rotation % 90:
        raise ValueError("rotation must be a multiple of 90")
    if codec == "libx265" and min(width, height) < 64:
        # x265 corrupts the heap (and aborts the process) below one 64-pixel CTU.
        raise ValueError("libx265 needs at least 64x64")
    quarter_turns = (rotation // 90) % 4
    stored_w, stored_h = (height, width) if quarter_turns % 2 else (width, height)

    container_options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=container_options) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width = stored_w
        stream.height = stored_h
        stream.pix_fmt = pix_fmt or _default_pix_fmt(codec)
        if pts_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
            stream.time_base = Fraction(1, 1000)
        if gop is not None:
            stream.codec_context.gop_size = gop
        if bframes is not None:
            stream.codec_context.max_b_frames = bframes
        stream.options = {**_quality_options(codec, gop, bframes), **(options or {})}
        if rotation:
            stream.set_display_rotation(rotation)

        audio_stream = None
        if audio:
            audio_stream = out.add_stream("aac", rate=16000)
            audio_stream.layout = "mono"

        for i in range(frames):
            picture = np.ascontiguousarray(np.rot90(upright_frame(i, width, height, corner), k=-quarter_turns))
            frame = _to_frame(picture, stream.pix_fmt)
            frame.pts = pts_ms[i] if pts_ms is not None else i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))

        if audio_stream is not None:
            _write_tone(out, audio_stream, seconds=frames / fps)
    return path


def make_audio_only(path: str | Path, seconds: float = 0.5) -> Path:
    """An M4A file with one AAC track and no video."""
    path = Path(path)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        _write_tone(out, stream, seconds)
    return path


def truncate(src: str | Path, dst: str | Path, keep: float) -> Path:
    """Copy the first ``keep`` fraction of ``src``'s bytes to ``dst`` (a cut download)."""
    data = Path(src).read_bytes()
    dst = Path(dst)
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def remux(src: str | Path, dst: str | Path, format: str | None = None) -> Path:
    """Copy ``src``'s video packets into another container (by ``dst``'s suffix, or ``format``)."""
    dst = Path(dst)
    with av.open(str(src)) as inp, av.open(str(dst), "w", format=format) as out:
        stream = inp.streams.video[0]
        copy = out.add_stream_from_template(stream)
        for packet in inp.demux(stream):
            if packet.dts is None:  # the demuxer's end-of-stream marker
                continue
            packet.stream = copy
            out.mux(packet)
    return dst


def available_encoders(names: Sequence[str] = tuple(DEFAULT_SUFFIX)) -> set[str]:
    """The encoders among ``names`` that this PyAV build has."""
    found = set()
    for name in names:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # av raises UnknownCodecError or ValueError by version
            continue
        found.add(name)
    return found


def _as_gray(frame: np.ndarray) -> np.ndarray:
    arr = np.asarray(frame)
    if hasattr(frame, "numpy"):  # a torch tensor
        arr = frame.numpy()
    if arr.ndim == 3 and arr.shape[0] == 3 and arr.shape[-1] != 3:
        arr = arr.transpose(1, 2, 0)
    if arr.ndim == 3:
        arr = arr.mean(axis=2)
    return arr


def _to_frame(picture: np.ndarray, pix_fmt: str) -> av.VideoFrame:
    if pix_fmt.startswith("gray"):
        # Encoders store grey as limited-range luma (16..235) without saying so;
        # hand them that directly, as swscale would treat "gray" as full range.
        luma = np.round(16 + picture[..., 0].astype(np.float64) * 219 / 255).astype(np.uint8)
        return av.VideoFrame.from_ndarray(luma, format="gray")
    return av.VideoFrame.from_ndarray(picture, format="rgb24")


def _default_pix_fmt(codec: str) -> str:
    return {"mjpeg": "yuvj420p"}.get(codec, "yuv420p")


def _quality_options(codec: str, gop: int | None, bframes: int | None) -> dict[str, str]:
    # High quality so the grey levels survive; x264/x265 need the GOP and
    # B-frame settings in their own option strings to honour them exactly.
    if codec == "libx264":
        opts = {"crf": "12", "preset": "ultrafast" if bframes is None else "veryfast"}
        x264 = []
        if gop is not None:
            x264 += [f"keyint={gop}", f"min-keyint={gop}", "scenecut=0"]
        if bframes is not None:
            x264.append(f"bframes={bframes}")
        if x264:
            opts["x264-params"] = ":".join(x264)
        return opts
    if codec == "libx265":
        x265 = ["log-level=error", "crf=12"]
        if gop is not None:
            x265 += [f"keyint={gop}", f"min-keyint={gop}", "scenecut=0"]
        if bframes is not None:
            x265.append(f"bframes={bframes}")
        return {"preset": "ultrafast", "x265-params": ":".join(x265)}
    if codec == "libvpx-vp9":
        return {"crf": "10", "b": "0", "deadline": "realtime", "cpu-used": "8"}
    if codec in ("mjpeg", "mpeg4"):
        # qmax caps the quantiser: the default bit rate would blur the levels.
        return {"qmin": "1", "qmax": "3"}
    return {}


def _write_tone(out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float) -> None:
    rate = stream.rate
    samples = max(1, int(rate * seconds))
    t = np.arange(samples) / rate
    tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :]
    chunk = stream.codec_context.frame_size or 1024
    for start in range(0, samples, chunk):
        block = np.ascontiguousarray(tone[:, start : start + chunk])
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
