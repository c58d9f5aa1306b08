"""The frozen backbone's features of clips seen before (``feature_cache: memory``, linear probe only).

A clip is keyed by a hash of its exact tensor (SHA-256 of its bytes, with its shape, dtype and the autocast
setting it ran under): a different clip, another augmentation draw or another frame size never hits, and a
hit returns what the backbone returned for those very bytes. Least recently used clips are evicted beyond
``max_bytes``. The cache is a plain attribute of the model, never a buffer: it is not in ``model.pt``.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import torch


def clip_key(clip: torch.Tensor) -> bytes:
    """A digest of the clip's exact bytes, shape, dtype and autocast setting (the features depend on all)."""
    # SHA-256: collision-resistant, and with the CPU's SHA instructions about twice blake2b's speed here.
    h = hashlib.sha256()
    h.update(repr((tuple(clip.shape), str(clip.dtype), clip.device.type)).encode())
    device = clip.device.type
    if torch.is_autocast_enabled(device):
        h.update(repr(torch.get_autocast_dtype(device)).encode())
    # Any dtype through its raw bytes (numpy has no bfloat16), read in place (no copy on the CPU).
    h.update(clip.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
    return h.digest()


class FeatureCache:
    """Per-clip features (T, D), least recently used evicted beyond ``max_bytes``."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.bytes = 0
        self._clips: OrderedDict[bytes, torch.Tensor] = OrderedDict()
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._clips)

    def get(self, key: bytes) -> torch.Tensor | None:
        features = self._clips.get(key)
        if features is None:
            self.misses += 1
            return None
        self._clips.move_to_end(key)
        self.hits += 1
        return features

    def put(self, key: bytes, features: torch.Tensor) -> None:
        size = features.numel() * features.element_size()
        if size > self.max_bytes or key in self._clips:
            return
        self._clips[key] = features.detach().clone()
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, old = self._clips.popitem(last=False)
            self.bytes -= old.numel() * old.element_size()

    def clear(self) -> None:
        self._clips.clear()
        self.bytes = 0
