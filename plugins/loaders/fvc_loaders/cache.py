"""``data.cache: DIR``: decoded, letterboxed uint8 clips kept on disk, so later epochs skip decoding.

An entry is keyed by the video's *content* (a BLAKE2b digest of the file) and by every setting
that shapes the clip (sampler, frames, size, windows, decoder, the reader's format version): a
changed video or setting is a different key, never a stale hit. What is cached is the clip as
decoded; augmentation is applied after the cache, so each epoch still gets its own.

Every entry carries a checksum of what was written (BLAKE2b keyed with the entry's own key, so an entry
copied over another one fails too), checked at every read: a damaged entry (bytes zeroed or flipped, cut
short, replaced by another array of the same shape) is logged in one line, decoded again and rewritten,
never served. An entry file is ``MAGIC``, the 32-byte checksum, then the clip as a plain ``.npy``.

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
import io
import json
import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fvc_core.contract import UserError, ownership, write_atomic

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

KIND = "clip-cache"
WAY_OUT = "choose another data.cache folder, or an empty one"
# Bump when the reader picks or converts frames differently, or entries are written otherwise: every
# entry made before is then a miss. 2: entries carry their checksum (format 1's plain .npy did not).
FORMAT = 2
SUFFIX = ".clip"
MAGIC = b"FVCCLIP2"
_CHECK_BYTES = 32  # blake2b digest of the .npy part
_PREFIX = len(MAGIC) + _CHECK_BYTES
_NPY_HEAD_PEEK = 4096  # more than np.save's header of any clip (shape and dtype, padded to 64 bytes)
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
            array = _read_entry(entry)
        except FileNotFoundError:
            pass
        except (OSError, ValueError, EOFError) as exc:  # damaged on disk: made again, never served
            log.warning("%s: damaged cache entry, decoding again (%s)", entry, exc)
        else:
            _touch(entry)
            return torch.from_numpy(array)
        clip = make()
        self._keep(entry, clip.numpy())
        return clip

    def entry(self, video: str | Path, settings: dict[str, Any]) -> Path:
        """Where the clip of ``video`` for ``settings`` is (or would be) kept."""
        key = hashlib.blake2b(f"{self.digest(video)}\n{settings_key(settings)}".encode(), digest_size=20).hexdigest()
        return self.folder / "clips" / key[:2] / f"{key}{SUFFIX}"

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
        if not self._write(entry, _entry_bytes(entry, array)):
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
        # Format 1's plain .npy entries can never be hits again: counted, and evicted like any other.
        for path in [*(self.folder / "clips").glob(f"*/*{SUFFIX}"), *(self.folder / "clips").glob("*/*.npy")]:
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


def _checksum(entry: Path, npy: bytes | memoryview) -> bytes:
    """BLAKE2b of an entry's ``.npy`` part, keyed with the entry's name (its key): the same clip bytes
    under another entry's name do not check."""
    return hashlib.blake2b(npy, digest_size=_CHECK_BYTES, key=entry.stem.encode()[:64]).digest()


def _entry_bytes(entry: Path, array: np.ndarray) -> bytes:
    """What ``entry`` holds for ``array``: MAGIC, the checksum, the ``.npy``."""
    npy = io.BytesIO()
    np.save(npy, array, allow_pickle=False)
    view = npy.getbuffer()
    return MAGIC + _checksum(entry, view) + bytes(view)


def _read_entry(entry: Path) -> np.ndarray:
    """The uint8 clip ``entry`` holds, checked against the checksum written with it; ValueError (or
    EOFError, OSError) when it does not check, FileNotFoundError when there is none."""
    with open(entry, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        buf = bytearray(size)  # the array is made over this buffer: one copy of the clip, writable
        got = f.readinto(buf)
    if got != size or size < _PREFIX or buf[: len(MAGIC)] != MAGIC:
        raise ValueError("not a clip entry of this fvc (no checksum)" if size else "empty file")
    view = memoryview(buf)
    npy = view[_PREFIX:]
    if _checksum(entry, npy) != bytes(view[len(MAGIC) : _PREFIX]):
        raise ValueError("its checksum does not match what was written")
    head = io.BytesIO(npy[:_NPY_HEAD_PEEK])
    version = np.lib.format.read_magic(head)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(head)
    if dtype != np.uint8 or len(shape) not in (4, 5) or fortran_order:
        raise ValueError(f"holds a {dtype} array of shape {shape}, not uint8 clips")
    count = int(np.prod(shape))
    array = np.frombuffer(buf, dtype=np.uint8, count=count, offset=_PREFIX + head.tell())
    return array.reshape(shape)


def _touch(path: Path) -> None:
    """Mark an entry as just used (eviction removes the least recently used first)."""
    # Explicit nanoseconds: a plain utime stamps the kernel's coarse clock (a tick of a few ms), and
    # entries used within one tick would tie and be evicted in name order.
    now = time.time_ns()
    try:
        os.utime(path, ns=(now, now))
    except OSError:
        pass
