"""What fvc may remove or overwrite: only folders it made, recognised by a marker it wrote there.

Every folder fvc fills (a run folder, a generated dataset, ``fvc prepare``'s output) holds
``.fvc-owned``, a small JSON file ``{"fvc": KIND, "created": ..., "pid": ...}`` written before
anything else goes in. fvc writes into or deletes a folder only when it is new, empty, or holds
that marker with the same KIND (a dataset folder is never removed as a run folder). Anything else
is refused with one line naming the folder: the user's files are never fvc's to replace.

Folders made before the marker existed are recognised by what fvc wrote in them then (``legacy``,
e.g. a run folder's ``run.json`` with a run id and a config hash) and get the marker on first use.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from fvc_core.errors import UserError

MARKER = ".fvc-owned"
RUN = "run"
SYNTHETIC = "synthetic"
PREPARE = "prepare"


def _marker_kind(folder: Path) -> str | None:
    try:
        data = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data.get("fvc") if isinstance(data, dict) else None


def _is_empty(folder: Path) -> bool:
    """No entries but a marker (maybe cut short by a kill while it was written)."""
    return all(entry.name == MARKER for entry in folder.iterdir())


def is_owned(folder: Path, kind: str, legacy: Callable[[Path], bool] | None = None) -> bool:
    """Whether ``folder`` is an existing folder fvc made as ``kind``."""
    if not folder.is_dir():
        return False
    return _marker_kind(folder) == kind or (legacy is not None and legacy(folder))


def _not_ours(folder: Path, what: str, way_out: str) -> UserError:
    return UserError(f"{folder}: {what}; fvc writes only into folders it made (marked {MARKER}): {way_out}")


def check_claimable(folder: Path, kind: str, *, way_out: str,
                    legacy: Callable[[Path], bool] | None = None) -> None:
    """Refuse (one line) unless ``folder`` is absent, an empty folder, or fvc's own ``kind`` folder."""
    folder = Path(folder)
    with os_errors(folder):
        if not folder.exists() and not folder.is_symlink():
            return
        if not folder.is_dir():
            raise _not_ours(folder, "exists and is not a folder", way_out)
        if is_owned(folder, kind, legacy) or _is_empty(folder):
            return
        raise _not_ours(folder, "holds files fvc did not make", way_out)


def claim(folder: Path, kind: str, *, way_out: str, legacy: Callable[[Path], bool] | None = None) -> None:
    """Make ``folder`` (and its parents) if needed and mark it as fvc's ``kind``; refuse a folder not ours.

    The marker goes in before anything else, so a folder fvc starts filling is always recognisable.
    """
    folder = Path(folder)
    check_claimable(folder, kind, way_out=way_out, legacy=legacy)
    with os_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)
        if _marker_kind(folder) != kind:
            stamp = {"fvc": kind, "created": datetime.now(UTC).isoformat(timespec="seconds"), "pid": os.getpid()}
            (folder / MARKER).write_text(json.dumps(stamp) + "\n")


def remove(folder: Path, kind: str, *, way_out: str, legacy: Callable[[Path], bool] | None = None) -> None:
    """Delete ``folder`` only if it is fvc's own ``kind`` folder (or empty); never through a symlink."""
    folder = Path(folder)
    with os_errors(folder):
        if folder.is_symlink():
            # Following it would delete wherever it points; removing the link would surprise whoever made it.
            raise _not_ours(folder, "is a symbolic link, not removed", way_out)
        if not folder.exists():
            return
    check_claimable(folder, kind, way_out=way_out, legacy=legacy)
    import shutil

    with os_errors(folder):
        shutil.rmtree(folder)


def check_output_dir(path: Path, what: str) -> None:
    """Refuse an output folder that is obviously wrong before anything is written there.

    ``what`` names the setting (``output_dir``) in the message.
    """
    path = Path(path)
    with os_errors(path, what):
        resolved = path.resolve()
        if resolved == Path(resolved.anchor):
            raise UserError(f"{what} {path}: the filesystem root; choose a folder of its own, e.g. runs/")
        if path.exists() and not path.is_dir():
            raise UserError(f"{what} {path}: exists and is not a folder; choose a folder")


_USER_ERRNOS = {errno.ENAMETOOLONG: "a name in the path is longer than the filesystem allows",
                errno.ENOTDIR: "a part of the path is a file, not a folder",
                errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                errno.EROFS: "read-only filesystem", errno.ELOOP: "too many symbolic links",
                # /proc, /sys and the like: the folder is there, a file cannot be made in it.
                errno.ENOENT: "no such file or folder, or a folder where files cannot be made"}

_ERRNO_OF_CLASS = {FileNotFoundError: errno.ENOENT, PermissionError: errno.EACCES, NotADirectoryError: errno.ENOTDIR}


@contextlib.contextmanager
def os_errors(path: Path, what: str | None = None) -> Iterator[None]:
    """The OSErrors a user's path causes (a name too long, a file where a folder should be, no
    permission, a read-only filesystem) as one line naming the path; others stay internal errors."""
    try:
        yield
    except OSError as exc:
        # polars raises FileNotFoundError and PermissionError with no errno: their class says it.
        number = exc.errno if exc.errno is not None else _ERRNO_OF_CLASS.get(type(exc))
        if number not in _USER_ERRNOS:
            raise
        where = f"{what} {path}" if what else str(path)
        raise UserError(f"{where}: {_USER_ERRNOS[number]}") from None
