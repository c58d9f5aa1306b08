"""TorchCodec as an fvc decoder (fvc-loaders' ``data.decoder``): the frames on screen at fvc's target times.

TorchCodec's ``get_frames_played_at`` answers exactly the question fvc's sampling asks (the frame
whose display interval holds a time), so the frames picked are those of the PyAV reader. The
timeline is the PyAV reader's (``plan()``, on the loaders' reference timeline: the container's start
and duration), so the same plan gives the same times. A file cut short of its header's duration is
not sampled again over what is there, as the PyAV reader does: its late targets take the last
frame. Frames are letterboxed with a bilinear, antialiased resize in torch (not swscale), so
pixels can differ from the PyAV reader's by rounding, never the frames.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from fvc_core.contract import BadVideoError, fit, one_line


class TorchCodecDecoder:
    name = "torchcodec"

    def __init__(self) -> None:
        try:
            import torchcodec.decoders  # noqa: F401  (loads the FFmpeg libraries: fail here, in one line)
        except Exception as exc:  # ImportError, RuntimeError: torchcodec says which FFmpeg it could not load
            from fvc_core.contract import PluginError

            raise PluginError(f"data.decoder: torchcodec cannot load ({one_line(exc, 200)}); install FFmpeg 4-8 "
                              "(e.g. apt-get install ffmpeg) or use data.decoder: pyav") from None

    def read(self, path: str | Path, plan: Callable[..., np.ndarray], size: int) -> list[np.ndarray]:
        import torch
        from torchcodec.decoders import VideoDecoder

        path = Path(path)
        # The PyAV reader's timeline (container start and duration; a VideoReadError naming the file
        # if it cannot be opened): the same plan then gives the same target times.
        times = np.ravel(plan())
        try:
            decoder = VideoDecoder(str(path), seek_mode="exact", num_ffmpeg_threads=0)
            meta = decoder.metadata
            # The last frame stays on screen until the stream's end; a time past it takes that frame.
            seconds = np.clip(times, meta.begin_stream_seconds, np.nextafter(meta.end_stream_seconds, -np.inf))
            frames = decoder.get_frames_played_at(seconds=seconds.tolist()).data  # (N, 3, H, W) uint8, upright
        except (RuntimeError, ValueError) as exc:
            raise BadVideoError(path, f"cannot decode: {one_line(exc, 200, with_type=False)}") from None
        return [_letterboxed_picture(frame, size, meta, torch) for frame in frames]


def _letterboxed_picture(frame, size: int, meta, torch) -> np.ndarray:
    """(h, w, 3) uint8: the frame scaled to fit size x size, display aspect kept (non-square pixels)."""
    height, width = frame.shape[1:]
    sar = meta.pixel_aspect_ratio
    shown_w = width * float(sar) if sar and float(sar) > 0 else width
    w, h = fit(shown_w, height, size)
    small = torch.nn.functional.interpolate(frame[None].float(), size=(h, w), mode="bilinear",
                                            antialias=True, align_corners=False)
    return small[0].round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()

