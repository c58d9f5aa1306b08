"""A closed standard output (``fvc schema | head``) is a normal end of a command, not a traceback."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any


class _StdoutUntilClosed:
    """sys.stdout for one command: once the reader is gone (``fvc schema | head``), what is left to print
    goes to /dev/null and the command carries on to its normal end. A run piped into ``head`` still
    trains and saves every fold; stopping it on a closed pipe would cost its results."""

    def __init__(self, stream: Any):
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._discard()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._discard()
            self._stream.flush()

    def _discard(self) -> None:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            # The descriptor itself, so the interpreter's own flush at exit finds nothing to complain about.
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


@contextlib.contextmanager
def closed_pipe_is_the_end() -> Iterator[None]:
    """Run a command with a closed standard output treated as a normal end, not a traceback."""
    saved = sys.stdout
    guard = _StdoutUntilClosed(saved)
    sys.stdout = guard  # type: ignore[assignment]
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):  # a test's capture stream may be closed already
            guard.flush()
        sys.stdout = saved
