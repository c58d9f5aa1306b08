"""The one rule for a file a command writes where the user says (``-o FILE``): fvc replaces only its own.

Beside each such file fvc keeps a small record, ``.<name>.fvc-owned`` (JSON: the command that wrote it
and the SHA-256 of what it wrote). An existing file is replaced only when that record names the same
command and the file's bytes still hash to what fvc wrote: a file of the user's, one another command
wrote (``fvc predict -o`` onto ``fvc index``'s training table), or fvc's own output edited since, is
refused in one line naming it and the way out, exit 2, and left byte for byte as it was. A sidecar
rather than a marker inside the file: CSV and polars' JSON have no place for one, and a hash proves more
than a marker (an edited file keeps a marker). A file cannot be told apart from its copy, and a moved
file leaves its record behind: both are refused, the safe side.

Every way the path itself is wrong (a folder, a symbolic link, a file where a folder should be, a
read-only file system, no permission, a name too long) is one line too; a missing parent folder is made,
as ``fvc index -o tables/ffpp.parquet`` has always done. The file is written atomically
(``fvc_core.atomic``), so a kill leaves the old file or the new one; the record lists both hashes while
the new file takes the name, so either is recognised afterwards.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fvc_core.atomic import Content, file_sha256, hidden_beside, write_atomic
from fvc_core.errors import UserError
from fvc_core.ownership import os_errors

RECORD_TAIL = ".fvc-owned"


@dataclass(frozen=True)
class OutputKind:
    """What a command's ``-o`` file is: ``name`` (recorded), ``noun`` (in a refusal: "an fvc report"),
    and ``legacy``, which recognises this command's files written before records existed."""

    name: str
    noun: str
    legacy: Callable[[Path], bool] | None = None


def record_path(path: Path) -> Path:
    """The record beside ``path`` (short enough for a 255-byte ``path`` name too)."""
    return hidden_beside(Path(path), RECORD_TAIL)


def _read_record(record: Path) -> dict | None:
    try:
        data = json.loads(record.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        return {}
    return data if isinstance(data, dict) and isinstance(data.get("sha256"), list) else {}


def _refuse(option: str, path: Path, reason: str) -> UserError:
    return UserError(f"{option} {path}: {reason}; not replaced: choose another file name or delete it yourself")


def _replaceable(path: Path, kind: OutputKind, option: str) -> list[str]:
    """The hashes of what fvc wrote at ``path`` ([] when absent); a UserError for anything else."""
    if path.is_symlink():
        # Replacing the link would surprise whoever made it; writing through it could land anywhere.
        raise _refuse(option, path, "is a symbolic link")
    if path.is_dir():
        raise UserError(f"{option} {path}: is a folder; give a file name in it")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise UserError(f"{option} {path}: {parent} is a file, not a folder")
            break
    if not path.exists():
        return []
    if not path.is_file():
        raise _refuse(option, path, "exists and is not a regular file")
    record = _read_record(record_path(path))
    if record is None and kind.legacy is not None and kind.legacy(path):
        return [file_sha256(path)]  # written before records existed; a file with a record is judged by it alone
    if not record:
        raise _refuse(option, path, f"exists and is not {kind.noun}")
    if record.get("fvc") != kind.name:
        other = record.get("noun") or "another command's output"
        raise _refuse(option, path, f"exists and is {other}, not {kind.noun}")
    # Hashed only now: a user's 50 GB video given as -o by mistake is refused without being read.
    found = file_sha256(path)
    if found not in record["sha256"]:
        raise _refuse(option, path, f"changed since fvc wrote it as {kind.noun}")
    return [found]


def check_output(path: str | os.PathLike[str], kind: OutputKind, *, option: str = "-o") -> None:
    """Refuse ``path`` now, in one line, if ``write_output`` would refuse it: call it before the work."""
    path = Path(path)
    with os_errors(path, option):
        _replaceable(path, kind, option)


def _write_record(record: Path, kind: OutputKind, hashes: list[str]) -> None:
    stamp = {"fvc": kind.name, "noun": kind.noun, "sha256": hashes,
             "written": datetime.now(UTC).isoformat(timespec="seconds"), "pid": os.getpid()}
    write_atomic(record, json.dumps(stamp) + "\n", per_process=True)


def write_output(path: str | os.PathLike[str], content: Content, kind: OutputKind, *, option: str = "-o") -> Path:
    """Write ``content`` (as ``fvc_core.atomic.write_atomic`` takes it) to ``path`` under the rule above."""
    path = Path(path)
    with os_errors(path, option):
        earlier = _replaceable(path, kind, option)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = record_path(path)
        written: list[str] = []

        def record_both(tmp: Path) -> None:
            written.append(file_sha256(tmp))
            _write_record(record, kind, written + earlier)

        # A new file is made create-only: a file of the user's that appears meanwhile is never replaced.
        if not write_atomic(path, content, per_process=True, create_only=not earlier, before_rename=record_both):
            raise _refuse(option, path, "appeared while fvc was writing it")
        _write_record(record, kind, written)
    return path
