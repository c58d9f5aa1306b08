"""Hook implementations of fvc-torchcodec. Nothing heavy here: torchcodec is imported when the decoder is built."""

from __future__ import annotations

from typing import Any

from fvc_core.contract import hookimpl


def _decoder() -> Any:
    from fvc_torchcodec.decoder import TorchCodecDecoder

    return TorchCodecDecoder()


@hookimpl
def register_decoders(register):
    """A decoder for fvc-loaders' ``data.decoder`` (the hook the core declares; read by fvc_loaders.decoders)."""
    register("torchcodec", _decoder, description="TorchCodec (system FFmpeg), frames picked by fvc's rule")
