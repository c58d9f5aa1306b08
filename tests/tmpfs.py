"""A real tmpfs mounted for one test (a full disk, a read-only file system): root and mount(8) only."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def mounted_tmpfs(mount: Path, options: str, without: str) -> Iterator[Path]:
    """``mount`` (made here) as a tmpfs with ``options``, unmounted after; the test is skipped, saying
    ``without`` (what goes untested), where no tmpfs can be mounted."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip(f"mounting a tmpfs needs root and mount(8): {without}")
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): {without}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
