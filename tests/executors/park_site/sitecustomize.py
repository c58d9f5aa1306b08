"""Parks a Ray worker of a real ``fvc run`` at a known point (tests/gated_fvc.py does it for the driver).

A Ray worker is started by Ray's own script, so the patch cannot be put in by a wrapper command: this
folder goes on PYTHONPATH (Ray's processes inherit it from the driver), and every Python process that
starts with ``FVC_TEST_PARK_GATE`` set patches ``MetadataDataset.read_video`` when it is imported: once
the file named there exists, the next video read writes its pid to ``FVC_TEST_PARKED`` (renamed into
place, so a reader never sees it half-written) and sleeps for good. Without the variable, nothing.
"""

import importlib.abc
import os
import sys
import time
from pathlib import Path

GATE = os.environ.get("FVC_TEST_PARK_GATE")
PARKED = os.environ.get("FVC_TEST_PARKED")


def _gate(cls) -> None:
    read = cls.read_video

    def gated(self, *args, **kwargs):
        if Path(GATE).exists():
            tmp = Path(f"{PARKED}.{os.getpid()}")
            tmp.write_text(str(os.getpid()))
            os.replace(tmp, PARKED)
            while True:
                time.sleep(1)
        return read(self, *args, **kwargs)

    cls.read_video = gated


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Finds fvc_loaders.dataset with the other finders, then patches it once it has run."""

    def find_spec(self, name, path, target=None):
        if name != "fvc_loaders.dataset":
            return None
        sys.meta_path.remove(self)
        try:
            import importlib.util

            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return None
        execute = spec.loader.exec_module

        def exec_module(module):
            execute(module)
            _gate(module.MetadataDataset)

        spec.loader.exec_module = exec_module
        return spec


if GATE and PARKED:
    sys.meta_path.insert(0, _PatchOnImport())
