"""Checkpoints: written atomically with a checksum record beside them, read with ``weights_only=True``
so a file never runs code, and refused when their bytes are not the ones written.

Everything saved is tensors, dicts, lists, tuples, str, numbers, bools or None.

``<name>.sha256`` (sha256sum format, so ``sha256sum -c`` works) lists the checksum of the
checkpoint's bytes. A checkpoint whose bytes were damaged can still be a valid zip that torch
loads without complaint (zeroed tensor data loads as zeros), so loading never trusts the file alone.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fvc_core.atomic import file_sha256, write_atomic
from fvc_core.errors import DiskFullError, UserError, one_line


class CheckpointError(UserError):
    """A checkpoint that cannot be read safely; names the file."""


def checksum_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(f"{path.name}.sha256")


def recorded_checksums(path: Path) -> list[str]:
    """The checksums the record beside ``path`` accepts ([] when there is no readable record)."""
    try:
        text = checksum_path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return []
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def _write_record(path: Path, digests: list[str]) -> None:
    record = checksum_path(path)
    write_atomic(record, "".join(f"{d}  {Path(path).name}\n" for d in dict.fromkeys(digests)))


def record_checksum(path: Path) -> None:
    """Record the current bytes of ``path`` as its valid content (for files written by other means)."""
    _write_record(path, [file_sha256(path)])


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then os.replace: a crash leaves the old file or the new one,
    and the checksum record accepts whichever is there.

    A full disk is a ``DiskFullError`` naming the path (torch reports it as 'basic_ios::clear');
    on any failure the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = ""

    def write(tmp: Path) -> None:
        nonlocal digest
        # Our own file object, closed on failure: a deleted file still open keeps its space on the disk.
        with open(tmp, "wb") as f:
            torch.save(obj, f)
        digest = file_sha256(tmp)
        # Between the two record writes the old and the new bytes are both accepted, so a crash
        # at any point leaves a record that matches the file on disk.
        _write_record(path, [digest, *recorded_checksums(path)])

    write_atomic(path, write)
    try:
        _write_record(path, [digest])
    except DiskFullError:
        raise DiskFullError(path) from None  # the checkpoint is what the user knows, not its record


def remove(path: Path) -> None:
    """A checkpoint and its checksum record."""
    Path(path).unlink(missing_ok=True)
    checksum_path(path).unlink(missing_ok=True)


def verify(path: Path) -> None:
    """Raise CheckpointError unless ``path``'s bytes are the ones its checksum record lists."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    accepted = recorded_checksums(path)
    if not accepted:
        raise CheckpointError(f"{path}: no checksum record ({checksum_path(path).name}) beside it, so its "
                              "bytes cannot be checked; it was not written by fvc's trainer")
    if file_sha256(path) not in accepted:
        raise CheckpointError(f"{path}: corrupt (checksum mismatch: its bytes changed after fvc wrote it)")


def load_safe(path: Path, map_location: str | torch.device = "cpu", *, check: bool = True) -> Any:
    """torch.load(weights_only=True) of a file whose checksum matches its record (``check``);
    anything else inside (code, arbitrary objects) is refused."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    if check:
        verify(path)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = [line.strip() for line in text.splitlines() if "unsupported global" in line.lower()]
        if found:
            raise CheckpointError(
                f"{path}: refused to load: it holds more than weights and plain values, and loading it "
                f"could run code ({found[0][:160]})"
            ) from None
        raise CheckpointError(f"{path}: not a readable checkpoint (unpickling failed)") from None
    except (RuntimeError, EOFError, OSError) as exc:
        first = one_line(exc, with_type=False)
        raise CheckpointError(f"{path}: not a readable checkpoint ({first[:160]})") from None


def rng_state() -> dict[str, Any]:
    """torch, CUDA, numpy and python RNG states, in plain types (numpy arrays become lists)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, (tuple, list)) else value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value
