"""The one rich console fvc prints to, so progress bars and tracker lines don't fight.

A thread may print through a console of its own (:func:`console_of_thread`): a sweep's points run
side by side in threads, and each point's lines then carry its id.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from functools import lru_cache

from rich.console import Console

_thread = threading.local()
_write_lock = threading.Lock()


@lru_cache(maxsize=1)
def _main_console() -> Console:
    # soft_wrap: a warning or an epoch line stays one line in logs, whatever the terminal width.
    return Console(highlight=False, soft_wrap=True)


def get_console() -> Console:
    """This thread's console: the shared one, unless the thread was given its own."""
    return getattr(_thread, "console", None) or _main_console()


def is_interactive() -> bool:
    """Progress bars on a terminal; plain log lines in CI and pipes."""
    return get_console().is_terminal and not os.environ.get("CI")


class _Labelled:
    """A text stream that starts every line with a label and writes whole lines to stdout, one
    writer at a time, so lines of threads printing at once never interleave mid-line."""

    def __init__(self, label: str):
        self.label = label
        self._partial = ""

    def write(self, text: str) -> int:
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        if lines:
            with _write_lock:
                sys.stdout.write("".join(f"{self.label}{line}\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self.write("\n")
        with _write_lock:
            sys.stdout.flush()

    def isatty(self) -> bool:
        return False


def labelled_console(label: str) -> Console:
    """A console whose every line starts with ``label`` (no progress bars: several live displays
    cannot share one terminal)."""
    return Console(file=_Labelled(label), highlight=False, soft_wrap=True, force_terminal=False,
                   width=_main_console().width, no_color=_main_console().no_color)


@contextlib.contextmanager
def console_of_thread(console: Console) -> Iterator[Console]:
    """``get_console()`` in this thread returns ``console`` while the block runs."""
    before = getattr(_thread, "console", None)
    _thread.console = console
    try:
        yield console
    finally:
        _thread.console = before
