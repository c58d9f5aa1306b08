"""``python -m tests.driver_reads MARK fvc-args...``: the real ``fvc`` command line, except that a video
opened by the PyAV reader (``fvc_loaders.reader``: probe, frames, clips) in this process creates the file
MARK. Only this process's reader is patched: a pool worker or a Ray task reads untouched.

A test of ``fvc prepare --executor ray`` checks with it that the fvc process decoded nothing itself.
"""

import sys
from pathlib import Path

import fvc_loaders.reader

from fvc_core.cli import main


class _MarkedOpen(fvc_loaders.reader._open):
    def __init__(self, *args, **kwargs):
        Path(sys.argv[1]).touch()
        super().__init__(*args, **kwargs)


if __name__ == "__main__":
    fvc_loaders.reader._open = _MarkedOpen
    sys.exit(main(sys.argv[2:]))
