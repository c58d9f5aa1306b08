"""What the reader's tests share: the decoder pinned to one machine's threads, and a count of decoded frames."""

from __future__ import annotations

import pytest


@pytest.fixture
def two_core_decoder(monkeypatch) -> None:
    """Seek-or-decode-on choices depend on the decoder's thread count (``sampling.DecodeCosts``): pin
    it to a 2-core machine's (3 frame threads) so every machine tests the same paths."""
    from fvc_loaders import reader

    monkeypatch.setattr(reader, "_threads", lambda codec: 3)


@pytest.fixture
def decoded(monkeypatch) -> list:
    """The pts of every frame the reader decodes during the test, in order."""
    from fvc_loaders import reader

    frames: list = []
    real = reader._decode

    def counting(*args, **kwargs):
        for frame in real(*args, **kwargs):
            frames.append(frame.pts)
            yield frame

    monkeypatch.setattr(reader, "_decode", counting)
    return frames
