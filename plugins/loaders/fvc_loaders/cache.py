"""``data.cache: DIR``: decoded, letterboxed uint8 clips kept on disk, so later epochs skip decoding.

An entry is keyed by the video's *content* (a BLAKE2b digest of the file) and by every setting
that shapes the clip (sampler, frames, size, windows, decoder, the reader's format version): a
changed video or setting is a different key, never a stale hit. What is cached is the clip as
decoded; augmentation is applied after the cache, so each epoch still gets its own.

A file's digest is remembered under a signature of its ``stat`` (device, inode, size, mtime and
ctime in nanoseconds; any write to a file changes its ctime, which no user call can set back), so
each video is read whole once, not at every epoch.

The folder is fvc's (``.fvc-owned``, kind ``clip-cache``): fvc refuses to write into a folder it did
not make, and removes only its own entries when the folder grows past ``cache_max_gb`` (the least
recently used first). Entries are written atomically, so several DataLoader workers (or runs) can
share one folder; a cache that cannot be written (a full disk) is logged once and read around.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fvc_core import ownership
from fvc_core.atomic import write_atomic
from fvc_core.errors import UserError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

KIND = "clip-cache"
WAY_OUT = "choose another data.cache folder, or an empty one"
# Bump when the reader picks or converts frames differently: every entry made before is then a miss.
FORMAT = 1
# Once over the limit, entries are removed down to this share of it, so eviction is not run at every write.
EVICT_TO = 0.9
_DIGEST = re.compile(r"[0-9a-f]{128}")  # hashlib's blake2b hexdigest


def settings_key(settings: dict[str, Any]) -> str:
    return json.dumps({"format": FORMAT, **settings}, sort_keys=True, default=str)


class ClipCache:
    """Clips by (video content, settings) under ``folder``, at most ``max_bytes`` of them."""

    def __init__(self, folder: str | Path, max_bytes: int):
        self.folder = Path(folder)
        self.max_bytes = int(max_bytes)
        self._used: int | None = None  # bytes of entries, scanned at the first write of this process
        self._claimed = False
        self._write_failed = False
        ownership.check_claimable(self.folder, KIND, way_out=WAY_OUT)

    # -- public ----------------------------------------------------------------------------------
    def clip(self, video: str | Path, settings: dict[str, Any], make: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The cached clip of ``video`` for ``settings``, or ``make()``'s, which is then kept."""
        import torch

        entry = self.entry(video, settings)
        try:
            array = np.load(entry, allow_pickle=False)
            if array.dtype != np.uint8 or array.ndim not in (4, 5):
                raise ValueError(f"holds a {array.dtype} array of shape {array.shape}, not uint8 clips")
        except FileNotFoundError:
            pass
        except (OSError, ValueError, EOFError) as exc:  # damaged on disk (an empty file is EOFError): made again
            log.warning("%s: unreadable cache entry, decoding again (%s)", entry, exc)
        else:
            _touch(entry)
            return torch.from_numpy(array)
        clip = make()
        self._keep(entry, clip.numpy())
        return clip

    def entry(self, video: str | Path, settings: dict[str, Any]) -> Path:
        """Where the clip of ``video`` for ``settings`` is (or would be) kept."""
        key = hashlib.blake2b(f"{self.digest(video)}\n{settings_key(settings)}".encode(), digest_size=20).hexdigest()
        return self.folder / "clips" / key[:2] / f"{key}.npy"

    def digest(self, video: str | Path) -> str:
        """BLAKE2b of the file's content, remembered under its stat signature."""
        video = Path(video)
        try:
            st = video.stat()
        except FileNotFoundError:
            return "missing"  # the reader names the file; nothing is cached for it
        signature = f"{video.resolve()}\n{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
        memo = self.folder / "digests" / f"{hashlib.blake2b(signature.encode(), digest_size=16).hexdigest()}.txt"
        try:
            remembered = memo.read_text().strip()
        except (FileNotFoundError, OSError, UnicodeDecodeError):
            remembered = ""
        # A damaged memo (empty, cut short) would give every such video one key: another video's clip.
        if _DIGEST.fullmatch(remembered):
            return remembered
        with open(video, "rb") as f:
            digest = hashlib.file_digest(f, "blake2b").hexdigest()
        self._write(memo, digest.encode())
        return digest

    # -- writing and eviction ----------------------------------------------------------------------
    def _keep(self, entry: Path, array: np.ndarray) -> None:
        def save(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.save(f, array, allow_pickle=False)

        if not self._write(entry, save):
            return
        if self._used is None:
            self._used = self._scan()[1]
        else:
            self._used += array.nbytes
        if self._used > self.max_bytes:
            self._evict()

    def _write(self, path: Path, content: Any) -> bool:
        if self._write_failed:
            return False
        try:
            if not self._claimed:
                ownership.claim(self.folder, KIND, way_out=WAY_OUT)
                self._claimed = True
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, content, per_process=True)
            _touch(path)
            return True
        except (OSError, UserError) as exc:  # a full disk, no permission: train on, decoding every time
            self._write_failed = True
            log.warning("%s: cannot write to the clip cache, reading without it (%s)", self.folder, exc)
            return False

    def _scan(self) -> tuple[list[tuple[int, int, Path]], int]:
        entries = []
        for path in (self.folder / "clips").glob("*/*.npy"):
            try:
                st = path.stat()
            except FileNotFoundError:  # removed by another worker meanwhile
                continue
            entries.append((st.st_mtime_ns, st.st_size, path))
        return entries, sum(size for _, size, _ in entries)

    def _evict(self) -> None:
        entries, used = self._scan()
        for _, size, path in sorted(entries):  # least recently used first
            if used <= self.max_bytes * EVICT_TO:
                break
            path.unlink(missing_ok=True)
            used -= size
        self._used = used


def _touch(path: Path) -> None:
    """Mark an entry as just used (eviction removes the least recently used first)."""
    # Explicit nanoseconds: a plain utime stamps the kernel's coarse clock (a tick of a few ms), and
    # entries used within one tick would tie and be evicted in name order.
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now))
    except OSError:
        pass
