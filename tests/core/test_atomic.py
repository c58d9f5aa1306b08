"""One helper writes files whole or not at all, one says an exception in one line: and no copies of either."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

import fvc_core
from fvc_core.atomic import write_atomic
from fvc_core.errors import DiskFullError, one_line
from tests.tmpfs import mounted_tmpfs

REPO = Path(fvc_core.__file__).parent.parent
# The lead's files, being edited while this refactor landed (see the helper's report): their copies go next.
PENDING: set[str] = set()


def _sources() -> list[Path]:
    files = [*REPO.glob("fvc_core/**/*.py"), *REPO.glob("plugins/*/fvc_*/**/*.py")]
    return [p for p in files if str(p.relative_to(REPO)) not in PENDING and p.name != "atomic.py"]


def test_no_module_renames_a_temporary_file_into_place_but_the_helper():
    copies = [f"{p.relative_to(REPO)}:{n}" for p in _sources()
              for n, line in enumerate(p.read_text().splitlines(), 1)
              if re.search(r"os\.replace\(|\.replace\(\w*(path|target|out)\w*\)|os\.link\(", line)]
    assert copies == []


def test_no_module_takes_an_exception_s_first_line_but_the_helper():
    copies = [f"{p.relative_to(REPO)}:{n}" for p in _sources()
              for n, line in enumerate(p.read_text().splitlines(), 1)
              if re.search(r"str\(exc\)(\.strip\(\))?\.splitlines\(\)(\[0\]|$)", line)]
    assert copies == []


def test_a_writer_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def half(tmp: Path) -> None:
        tmp.write_text("ne")
        raise RuntimeError("killed half-way")

    with pytest.raises(RuntimeError):
        write_atomic(target, half)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]
    write_atomic(target, "new", fsync=True)
    assert target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_create_only_never_replaces_a_file_made_first(tmp_path):
    target = tmp_path / "results.duckdb"
    assert write_atomic(target, b"mine", create_only=True, per_process=True)
    assert not write_atomic(target, b"another run's", create_only=True, per_process=True)
    assert target.read_bytes() == b"mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.duckdb"]


def test_a_temporary_name_says_whose_it_is(tmp_path):
    seen = []
    write_atomic(tmp_path / "a.mp4", lambda tmp: seen.append(tmp.name) or tmp.write_bytes(b"x"),
                 per_process=True, suffix=".mp4")
    assert seen == [f".a.mp4.{os.getpid()}.tmp.mp4"]  # what prepare's orphan cleaner recognises


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs (needs root): a really full disk."""
    with mounted_tmpfs(tmp_path / "small", "size=1m", "a full disk is not tested here") as mount:
        yield mount


def test_a_full_disk_is_one_line_naming_the_file_and_leaves_nothing(full_disk):
    target = full_disk / "model.pt"
    with pytest.raises(DiskFullError) as raised:
        write_atomic(target, b"\0" * (2 << 20))
    assert str(raised.value).startswith(f"{target}: no space left")
    assert list(full_disk.iterdir()) == []


@pytest.mark.parametrize(("exc", "kwargs", "expected"), [
    (ValueError("bad value\nTraceback noise"), {}, "ValueError: bad value"),
    (ValueError(""), {}, "ValueError"),
    (ValueError("  \n\n  second line first  \n"), {}, "ValueError: second line first"),
    (OSError("x" * 50), {"limit": 10}, "OSError: xxxxxxxxxx"),
    (ValueError(""), {"with_type": False}, "ValueError"),  # never an empty reason, never an IndexError
    (RuntimeError("it broke\nat line 2"), {"with_type": False}, "it broke"),
])
def test_one_line_is_the_type_and_the_first_line_of_the_message(exc, kwargs, expected):
    assert one_line(exc, **kwargs) == expected
