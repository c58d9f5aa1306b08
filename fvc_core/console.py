"""The one rich console fvc prints to, so progress bars and tracker lines don't fight."""

from __future__ import annotations

import os
from functools import lru_cache

from rich.console import Console


@lru_cache(maxsize=1)
def get_console() -> Console:
    # soft_wrap: a warning or an epoch line stays one line in logs, whatever the terminal width.
    return Console(highlight=False, soft_wrap=True)


def is_interactive() -> bool:
    """Progress bars on a terminal; plain log lines in CI and pipes."""
    return get_console().is_terminal and not os.environ.get("CI")
