"""Helpers the built-in layouts share: listing a folder's videos, reading a JSON split file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fvc_core.contract import one_line
from fvc_loaders.index import VIDEO_EXTENSIONS

# FF++'s download script names c0 "raw"; papers and the issue call it c0.
COMPRESSIONS = ("raw", "c0", "c23", "c40")


def videos_in(folder: Path) -> list[Path]:
    """The video files directly in ``folder`` (sorted, hidden ones left out); none if it is absent."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS and not p.name.startswith("."))


def read_json(path: Path, root: Path, problems: list[str]) -> Any:
    """The parsed file, or None with a problem line naming it (missing, unreadable, not JSON)."""
    rel = path.relative_to(root).as_posix()
    if not path.is_file():
        problems.append(f"{rel}: missing")
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        problems.append(f"{rel}: not readable as JSON ({one_line(exc, with_type=False)})")
        return None


def compression_folders(parent: Path) -> list[Path]:
    """``parent/<raw|c0|c23|c40>`` folders that exist (other folders, such as masks, are not videos)."""
    return [parent / c for c in COMPRESSIONS if (parent / c).is_dir()]
