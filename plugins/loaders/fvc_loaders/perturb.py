"""``fvc evaluate --perturb SPEC``: the damage real videos carry, applied to real and fake videos alike.

Built in (registered by this plugin's ``register_perturbations``, like any plugin's):

- DeeperForensics-1.0's seven (Jiang et al., CVPR 2020), levels 1-5, the parameters of its release:
  ``saturation`` (CS: chroma scaled by 0.4, 0.3, 0.2, 0.1, 0.0), ``contrast`` (CC: pixels scaled by 0.85,
  0.725, 0.6, 0.475, 0.35), ``block`` (BW: 16, 32, 48, 64, 80 grey 8x8 blocks per 256 pixels of the short
  side), ``noise`` (GNC: Gaussian noise of variance 0.001, 0.002, 0.005, 0.01, 0.05 in normalised
  limited-range YCbCr), ``blur`` (GB: Gaussian kernel 7, 9, 13, 17, 21, sigma = kernel / 6),
  ``pixelation`` (down- then up-scaling, bilinear, by 2, 3, 4, 5, 6), ``compression`` (VC: libx264 at
  CRF 30, 32, 35, 38, 40);
- FaceForensics++'s ``c23`` and ``c40`` (libx264 at CRF 23 and 40; ``ffpp`` names both);
- ``resize``: down to 0.75, 0.5, 0.375, 0.25, 0.125 of each side (area-averaged, as a platform's
  scaler does), back up bilinear.

How: every frame of the video is decoded at its source resolution (upright, at its display aspect),
damaged, and written to a temporary video (lossless ``libx264rgb`` for frame damage; ``libx264`` at the
level's CRF, a real re-encode, for compression), keeping each frame's timestamp; the run's own dataset
then reads that file exactly as it reads the clean one (sampling, the protocol's scaling, letterbox).
Random damage (noise, block positions) is drawn from a generator seeded by the video's content, the
perturbation, its level and ``--perturb-seed``: the same command gives the same frames, real and fake
videos alike, on any machine and in any order.

Where DeeperForensics' own code differs from the above: it truncates to uint8 (a bias of half a grey
level), fvc rounds; and its block count uses the integer part of short side / 256, which is 0 below
256 pixels (nothing drawn on a face crop); fvc draws at least the level's count there.

A plugin adds perturbations by defining ``register_perturbations(register)`` in its ``fvc`` entry-point
module (a hook fvc-loaders declares in ``fvc_loaders.hookspecs``, collected like the core's kinds):
``register(name, value, description)`` where ``value`` has ``levels`` (the parameter of level 1, 2, ...)
and ``apply(frame, parameter, rng) -> frame``: an ``(H, W, 3)`` uint8 RGB frame at source resolution
and a ``numpy.random.Generator`` in, the damaged frame (same shape and dtype) out.
"""

from __future__ import annotations

import copy
import hashlib
import re
import tempfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from fvc_core.contract import BadVideoError, PluginError, UserError

KIND = "perturbations"  # register_perturbations, a hook fvc-loaders declares (fvc_loaders.hookspecs)
# Bump when a perturbation makes other frames from the same video and level: the clip cache keys on it.
VERSION = 1
BLOCK_WIDTH = 8
BLOCK_GREY = 128
# What --perturb accepts besides a perturbation's name: groups of several.
GROUPS = {
    "deeperforensics": ("saturation", "contrast", "block", "noise", "blur", "pixelation", "compression"),
    "ffpp": ("c23", "c40"),
}
_SPEC = re.compile(r"^(?P<name>[A-Za-z0-9_.-]+)(?::(?P<levels>[0-9,\-]+))?$")


def _round(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _ycrcb(frame: np.ndarray) -> np.ndarray:
    """Full-range BT.601 Y, Cr, Cb of an RGB uint8 frame, in [0, 1] (chroma centred on 0.5)."""
    import cv2

    return cv2.cvtColor(frame.astype(np.float32) / 255.0, cv2.COLOR_RGB2YCrCb)


def _rgb(ycrcb: np.ndarray) -> np.ndarray:
    import cv2

    return _round(cv2.cvtColor(ycrcb.astype(np.float32), cv2.COLOR_YCrCb2RGB) * 255.0)


# --- DeeperForensics-1.0's frame damage ---------------------------------------------------------------


def saturation(frame: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """CS: the chroma (BT.601 Cb, Cr) scaled by ``factor`` around neutral grey, the luma kept."""
    ycc = _ycrcb(frame)
    ycc[..., 1:] = 0.5 + (ycc[..., 1:] - 0.5) * factor
    return _rgb(ycc)


def contrast(frame: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    """CC: every pixel value scaled by ``factor``."""
    return _round(frame.astype(np.float32) * factor)


def block_count(height: int, width: int, blocks: int) -> int:
    """BW's number of blocks: ``blocks`` per whole 256 pixels of the short side, at least ``blocks``."""
    return blocks * max(1, min(height, width) // 256)


def block(frame: np.ndarray, blocks: int, rng: np.random.Generator) -> np.ndarray:
    """BW: grey (128) 8x8 blocks at random places; each block's left then top drawn from ``rng``."""
    out = frame.copy()
    h, w = frame.shape[:2]
    for _ in range(block_count(h, w, blocks)):
        left = int(rng.integers(0, max(1, w - BLOCK_WIDTH)))
        top = int(rng.integers(0, max(1, h - BLOCK_WIDTH)))
        out[top:top + BLOCK_WIDTH, left:left + BLOCK_WIDTH] = BLOCK_GREY
    return out


def noise(frame: np.ndarray, variance: float, rng: np.random.Generator) -> np.ndarray:
    """GNC: white Gaussian noise of ``variance`` added to each of Y, Cb, Cr in normalised limited range
    (Y' = (16 + 219 Y) / 255, C' = (16 + 224 C) / 255, as DeeperForensics' bgr2ycbcr), one draw of shape
    (H, W, 3) in the order Y, Cb, Cr."""
    ycc = _ycrcb(frame)
    draw = np.sqrt(variance) * rng.standard_normal(frame.shape)
    # Noise of std s on the limited-range scale is s * 255/219 (luma), s * 255/224 (chroma) on the full one.
    ycc[..., 0] += draw[..., 0] * (255 / 219)
    ycc[..., 2] += draw[..., 1] * (255 / 224)  # Cb is the third plane of OpenCV's YCrCb
    ycc[..., 1] += draw[..., 2] * (255 / 224)
    return _rgb(ycc)


def blur(frame: np.ndarray, kernel: int, rng: np.random.Generator) -> np.ndarray:
    """GB: a ``kernel`` x ``kernel`` Gaussian blur of sigma kernel / 6 (OpenCV, borders reflected)."""
    import cv2

    # In float, rounded once: OpenCV's 8-bit path is a fixed-point approximation, up to a grey level off.
    return _round(cv2.GaussianBlur(frame.astype(np.float32), (kernel, kernel), kernel / 6))


def pixelation(frame: np.ndarray, factor: int, rng: np.random.Generator) -> np.ndarray:
    """JPEG (DeeperForensics' name for it): down to 1/``factor`` of each side and back, bilinear."""
    import cv2

    h, w = frame.shape[:2]
    small = _resized(frame, (max(1, w // factor), max(1, h // factor)), cv2.INTER_LINEAR)
    return _resized(small, (w, h), cv2.INTER_LINEAR)


def _resized(frame: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """OpenCV's resize in float, rounded once to uint8 (its 8-bit path is fixed-point, a level off at times)."""
    import cv2

    return _round(cv2.resize(frame.astype(np.float32), size, interpolation=interpolation))


def resize(frame: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Down to ``fraction`` of each side (area-averaged), back up to the source size (bilinear)."""
    import cv2

    h, w = frame.shape[:2]
    small = _resized(frame, (max(1, round(w * fraction)), max(1, round(h * fraction))), cv2.INTER_AREA)
    return _resized(small, (w, h), cv2.INTER_LINEAR)


@dataclass(frozen=True)
class Builtin:
    """A perturbation of this plugin: ``apply`` damages frames; ``crf`` ones re-encode the video instead."""

    levels: tuple[Any, ...]
    apply: Callable[[np.ndarray, Any, np.random.Generator], np.ndarray] | None = None
    crf: bool = False
    unit: str = ""


BUILTINS: dict[str, tuple[Builtin, str]] = {
    "saturation": (Builtin((0.4, 0.3, 0.2, 0.1, 0.0), saturation, unit="chroma factor"),
                   "DeeperForensics CS: colour saturation, chroma x 0.4 ... 0.0"),
    "contrast": (Builtin((0.85, 0.725, 0.6, 0.475, 0.35), contrast, unit="pixel factor"),
                 "DeeperForensics CC: contrast, pixels x 0.85 ... 0.35"),
    "block": (Builtin((16, 32, 48, 64, 80), block, unit="8x8 grey blocks per 256 px of short side"),
              "DeeperForensics BW: 16 ... 80 grey 8x8 blocks"),
    "noise": (Builtin((0.001, 0.002, 0.005, 0.01, 0.05), noise, unit="variance (normalised YCbCr)"),
              "DeeperForensics GNC: Gaussian noise in colour, variance 0.001 ... 0.05"),
    "blur": (Builtin((7, 9, 13, 17, 21), blur, unit="kernel (sigma = kernel / 6)"),
             "DeeperForensics GB: Gaussian blur, kernel 7 ... 21"),
    "pixelation": (Builtin((2, 3, 4, 5, 6), pixelation, unit="down/up factor"),
                   "DeeperForensics JPEG: pixelation, down/up by 2 ... 6"),
    "compression": (Builtin((30, 32, 35, 38, 40), crf=True, unit="libx264 CRF"),
                    "DeeperForensics VC: libx264 re-encode at CRF 30 ... 40"),
    "c23": (Builtin((23,), crf=True, unit="libx264 CRF"), "FaceForensics++ c23: libx264 re-encode at CRF 23"),
    "c40": (Builtin((40,), crf=True, unit="libx264 CRF"), "FaceForensics++ c40: libx264 re-encode at CRF 40"),
    "resize": (Builtin((0.75, 0.5, 0.375, 0.25, 0.125), resize, unit="fraction of each side"),
               "down to 0.75 ... 0.125 of each side (area), back up (bilinear)"),
}


# --- the registry -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Perturbation:
    name: str
    value: Any
    description: str
    plugin: str

    @property
    def levels(self) -> tuple[Any, ...]:
        return tuple(self.value.levels)

    @property
    def crf(self) -> bool:
        return bool(getattr(self.value, "crf", False))

    def parameter(self, level: int) -> Any:
        return self.levels[level - 1]


def available_perturbations(disabled: Iterable[str] = ()) -> dict[str, Perturbation]:
    """Every registered perturbation by name; a name two plugins claim is one line naming both."""
    from fvc_core.contract import registered

    found, conflicts = registered(KIND, disabled)
    for name, plugins in conflicts.items():
        raise PluginError(f"--perturb {name!r} is provided by plugins {' and '.join(map(repr, plugins))}; "
                          "disable one with -p no:NAME")
    out = {}
    for name, r in found.items():
        levels = getattr(r.value, "levels", None)
        if not levels or not (getattr(r.value, "crf", False) or callable(getattr(r.value, "apply", None))):
            raise PluginError(f"plugin {r.plugin!r}: perturbation {name!r} needs `levels` (a non-empty list) and "
                              "`apply(frame, parameter, rng)`")
        out[name] = Perturbation(name, r.value, r.description, r.plugin)
    return out


@dataclass(frozen=True)
class Perturbed:
    """One (perturbation, level) to evaluate, and the seed its random damage is drawn from."""

    perturbation: Perturbation
    level: int
    seed: int = 0

    @property
    def name(self) -> str:
        return f"{self.perturbation.name}-{self.level}"

    def record(self) -> dict[str, Any]:
        """What the evaluation's protocol (and the clip cache's key) records of it."""
        p = self.perturbation
        return {"name": p.name, "level": self.level, "parameter": p.parameter(self.level),
                "unit": getattr(p.value, "unit", ""), "description": p.description, "plugin": p.plugin,
                "seed": self.seed, "version": VERSION,
                "applied": "re-encoded with libx264 at this CRF" if p.crf else
                "each decoded frame at source resolution, before the protocol's scaling"}


def parse_specs(specs: Sequence[str], seed: int = 0,
                known: dict[str, Perturbation] | None = None) -> list[Perturbed]:
    """``NAME``, ``NAME:3``, ``NAME:1,3,5``, ``NAME:2-4`` or a group (``deeperforensics``, ``ffpp``): the
    (perturbation, level) pairs, in the order given, each once. A mistake is one line naming the SPEC."""
    known = available_perturbations() if known is None else known
    out: list[Perturbed] = []
    for spec in specs:
        match = _SPEC.match(spec.strip())
        if not match:
            raise UserError(f"--perturb {spec!r}: expected NAME or NAME:LEVELS (e.g. blur:1,3,5 or blur:1-5)")
        name, levels_text = match["name"], match["levels"]
        for one in GROUPS.get(name, (name,)):  # a group with levels: each of its perturbations at those levels
            if one not in known:
                from fvc_core.contract import closest

                raise UserError(f"--perturb {spec!r}: unknown perturbation {one!r}{closest(one, known)}; "
                                f"groups: {', '.join(GROUPS)}")
            perturbation = known[one]
            count = len(perturbation.levels)
            levels = _levels(levels_text, count, spec) if levels_text else list(range(1, count + 1))
            for level in levels:
                item = Perturbed(perturbation, level, seed)
                if item not in out:
                    out.append(item)
    return out


def _levels(text: str, count: int, spec: str) -> list[int]:
    levels: list[int] = []
    for part in text.split(","):
        low, dash, high = part.partition("-")
        try:
            span = range(int(low), int(high) + 1) if dash else [int(low)]
        except ValueError:
            raise UserError(f"--perturb {spec!r}: {part!r} is not a level or a range of levels") from None
        if not span:  # 5-1 would otherwise score no perturbation at all, silently
            raise UserError(f"--perturb {spec!r}: the range {part!r} holds no level (write LOW-HIGH, e.g. 1-5)")
        for level in span:
            if not 1 <= level <= count:
                raise UserError(f"--perturb {spec!r}: level {level} does not exist (levels 1-{count})")
            levels.append(level)
    return levels


# --- making a perturbed video -------------------------------------------------------------------------


def video_seed(path: str | Path, perturbed: Perturbed) -> np.random.Generator:
    """The generator of one video's random damage: its content, the perturbation, its level, the seed."""
    with open(path, "rb") as f:
        content = int.from_bytes(hashlib.file_digest(f, "sha256").digest()[:8], "little")
    name = zlib.crc32(perturbed.perturbation.name.encode())
    return np.random.default_rng([perturbed.seed, content, name, perturbed.level])


def copy_suffix(perturbed: Perturbed) -> str:
    """The container of a perturbed copy that keeps the source's timeline (what the reader samples
    over): MP4 for the lossless copy (every timestamp exact); Matroska for a re-encode, whose B-frames
    make MP4's duration (from decoding times) a frame short, where Matroska keeps it to the millisecond."""
    return ".mkv" if perturbed.perturbation.crf else ".mp4"


def perturb_video(src: str | Path, dst: str | Path, perturbed: Perturbed) -> Path:
    """Write ``src`` with ``perturbed``'s damage to ``dst`` (``copy_suffix``): every frame, its timestamp kept.

    Frame damage is written losslessly (libx264rgb, qp 0), so the reader sees exactly the damaged
    frames; compression is libx264 at the level's CRF (preset medium, FFmpeg's default, as both
    DeeperForensics and FaceForensics++ ran it), yuv420p (4:4:4 for an odd-sized picture). Raises
    a BadVideoError naming ``src`` when it cannot be decoded.
    """
    import av

    from fvc_loaders.letterbox import FrameConverter
    from fvc_loaders.reader import VideoReadError, _open, _reason

    p, dst = perturbed.perturbation, Path(dst)
    parameter = p.parameter(perturbed.level)
    rng = video_seed(src, perturbed)
    durations: dict[int, int | None] = {}
    with _open(src) as (container, stream), av.open(str(dst), "w") as out:
        convert: FrameConverter | None = None
        encoder = None
        last_pts: int | None = None
        time_base = stream.time_base or Fraction(1, 90000)
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        try:
            for index, frame in enumerate(container.decode(stream)):
                if convert is None:
                    convert = FrameConverter(1, stream.sample_aspect_ratio, bars=False)
                    convert.size = round(max(convert.shown_size(frame)))
                image = convert(frame)  # upright, display aspect, source resolution: no scaling
                if not p.crf:
                    damaged = p.value.apply(image, parameter, rng)
                    image = _checked(damaged, image.shape, p)
                if encoder is None:
                    encoder = _encoder(out, p, parameter, image.shape, rate, time_base)
                pts = frame.pts if frame.pts is not None else round(index / rate / time_base)
                if last_pts is not None and pts <= last_pts:
                    continue  # a repeated timestamp: the reader would show the first one anyway
                last_pts = pts
                picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
                picture.pts, picture.time_base = pts, time_base
                # Each frame keeps its duration too: the container's duration is the reader's timeline.
                durations[pts] = frame.duration
                _mux(out, encoder.encode(picture), durations)
        except av.FFmpegError as error:
            raise VideoReadError(src, f"cannot be decoded for --perturb {perturbed.name} ({_reason(error)})") from None
        if encoder is None:
            raise VideoReadError(src, "no frame could be decoded")
        _mux(out, encoder.encode(None), durations)
    return dst


def _mux(out: Any, packets: list[Any], durations: dict[int, int | None]) -> None:
    for packet in packets:
        duration = durations.pop(packet.pts, None)
        if duration:
            packet.duration = duration
        out.mux(packet)


def _checked(frame: Any, shape: tuple[int, ...], p: Perturbation) -> np.ndarray:
    frame = np.asarray(frame)
    if frame.shape != shape or frame.dtype != np.uint8:
        raise PluginError(f"plugin {p.plugin!r}: perturbation {p.name!r} returned a {frame.dtype} array of shape "
                          f"{frame.shape}; expected uint8 {shape} (the frame it was given)")
    return frame


def _encoder(out: Any, p: Perturbation, parameter: Any, shape: tuple[int, ...], rate: Fraction,
             time_base: Fraction) -> Any:
    h, w = shape[:2]
    if p.crf:
        stream = out.add_stream("libx264", rate=rate)
        stream.pix_fmt = "yuv420p" if h % 2 == 0 and w % 2 == 0 else "yuv444p"
        stream.options = {"crf": str(parameter), "preset": "medium"}
    else:
        stream = out.add_stream("libx264rgb", rate=rate)
        stream.pix_fmt = "rgb24"
        stream.options = {"qp": "0", "preset": "ultrafast"}
    stream.width, stream.height = w, h
    stream.time_base = time_base
    stream.codec_context.time_base = time_base
    return stream


# --- reading perturbed clips through the run's dataset -----------------------------------------------


@dataclass
class PerturbedDataset:
    """The run's dataset, reading each video with ``perturbed``'s damage: the perturbed copy is made in
    a temporary folder, read by the dataset as any video, and removed. With the dataset's clip cache on
    (``data.cache``), the perturbed clip is kept under the clean video's content and the perturbation
    (``record()``), so a second evaluation decodes nothing."""

    dataset: Any
    perturbed: Perturbed
    workdir: Path | None = None
    _plain: Any = field(default=None, init=False, repr=False)

    @property
    def on_bad_video(self) -> str:
        return getattr(self.dataset, "on_bad_video", "fail")

    def protocol(self) -> dict[str, Any]:
        return self.dataset.protocol()

    def read_video(self, path: str | Path, *, augment: bool = False, seed: int = 0) -> Any:
        # fvc_loaders.dataset.MetadataDataset (and its subclasses) keep their clip cache as `_cache`.
        cache = getattr(self.dataset, "_cache", None) if hasattr(self.dataset, "clip_settings") else None
        if cache is not None:
            settings = {**self.dataset.clip_settings(), "perturbation": self.perturbed.record()}
            return cache.clip(path, settings, lambda: self._read(path))
        return self._read(path)

    def _read(self, path: str | Path) -> Any:
        if self._plain is None:
            # The dataset without its cache: the temporary copy must not take a cache entry of its own.
            self._plain = copy.copy(self.dataset)
            if hasattr(self._plain, "clip_settings"):
                self._plain.__dict__["_clip_cache"] = None
        with tempfile.TemporaryDirectory(prefix="fvc-perturb-", dir=self.workdir) as folder:
            copy_path = Path(folder) / f"{Path(str(path)).stem}.{self.perturbed.name}{copy_suffix(self.perturbed)}"
            perturb_video(path, copy_path, self.perturbed)
            try:
                return self._plain.read_video(str(copy_path))
            except BadVideoError as exc:
                raise BadVideoError(str(path), f"its copy under --perturb {self.perturbed.name} could not be "
                                               f"read ({exc.reason})") from None
