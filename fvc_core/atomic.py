"""One way to write a file: whole or not at all.

The content goes to a hidden temporary file beside the target (same folder, so the rename is atomic
on one file system), then takes the target's name. A crash or kill leaves the old file or the new
one, never half of one; any failure removes the temporary file, and a full disk is a one-line
``DiskFullError`` naming the target rather than a library's traceback.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path

from fvc_core.errors import DiskFullError, is_disk_full


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in blocks (checkpoints, output records, tables)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()

Content = bytes | str | Callable[[Path], None]
"""Bytes, text (UTF-8), or a function that writes the file it is given (``df.write_parquet``...)."""


NAME_MAX = 255
"""Bytes in one file name on Linux file systems (ext4, xfs, btrfs, tmpfs): a name beside a file that
adds to the file's own name must stay within it, or a legal 250-byte file name cannot be written."""


def hidden_beside(path: Path, tail: str) -> Path:
    """``.<name><tail>`` beside ``path``; where that passes ``NAME_MAX`` bytes, the name is cut and
    ``~`` and 12 hex digits of its hash take the cut part's place (unique per name, same folder)."""
    path = Path(path)
    name = path.name
    if len(os.fsencode(f".{name}{tail}")) <= NAME_MAX:
        return path.with_name(f".{name}{tail}")
    digest = "~" + hashlib.sha256(os.fsencode(name)).hexdigest()[:12]
    room = NAME_MAX - len(os.fsencode(f".{digest}{tail}"))
    while len(os.fsencode(name)) > room:  # whole characters off the end: never half a UTF-8 sequence
        name = name[:-1]
    return path.with_name(f".{name}{digest}{tail}")


def temporary_name(path: Path, *, per_process: bool = False, suffix: str = "") -> Path:
    """``.<name>.tmp`` beside ``path``, or ``.<name>.<pid>.tmp`` when several processes may write it
    at once (each then has its own, and a cleaner can tell a dead writer's file by its pid).
    ``suffix`` follows ``.tmp`` for writers that choose the format by extension (``.mp4``).
    A long name is shortened (``hidden_beside``): the pid and suffix always stay last."""
    middle = ""
    if per_process:
        # Threads of one process (a sweep's points side by side) need names of their own too; the pid
        # stays the last part, where cleaners read it.
        thread = "" if threading.current_thread() is threading.main_thread() else f".t{threading.get_native_id()}"
        middle = f"{thread}.{os.getpid()}"
    return hidden_beside(path, f"{middle}.tmp{suffix}")


def write_atomic(path: str | os.PathLike[str], content: Content, *, per_process: bool = False,
                 suffix: str = "", fsync: bool = False, create_only: bool = False,
                 before_rename: Callable[[Path], None] | None = None) -> bool:
    """Write ``content`` to ``path`` through a temporary file; True when ``path`` now holds it.

    ``fsync`` flushes the file to the disk before the rename (a power cut then keeps it too).
    ``create_only`` never replaces a file that exists, even one another process makes at the same
    moment (hard link, create-if-absent): False when ``path`` was there first; where the file system
    has no hard links, a plain rename if ``path`` is still absent. ``before_rename(tmp)`` runs on the
    complete temporary file just before it takes the name (``fvc_core.outputs`` records its hash).
    """
    path = Path(path)
    tmp = temporary_name(path, per_process=per_process, suffix=suffix)
    try:
        if callable(content):
            content(tmp)
        elif isinstance(content, str):
            tmp.write_text(content, encoding="utf-8")
        else:
            tmp.write_bytes(content)
        if fsync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        if before_rename is not None:
            before_rename(tmp)
        if not create_only:
            os.replace(tmp, path)
            return True
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:  # a file system without hard links
            if path.exists():
                return False
            os.replace(tmp, path)
        return True
    except BaseException as exc:
        if is_disk_full(exc):
            raise DiskFullError(path) from None
        raise
    finally:
        tmp.unlink(missing_ok=True)
