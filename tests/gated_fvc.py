"""``python -m tests.gated_fvc GATE PARKED fvc-args...``: the real ``fvc`` command line, except that once
the file GATE exists, the next video read parks the process for good (creating PARKED to say so).

A test that must kill a run in a given state (say, fold 1 checkpointed but not finished) waits for
PARKED and kills then, instead of polling for a file and hoping to kill inside a short time window.
Reads happen in the main process when trainer.num_workers is 0.
"""

import sys
import time
from pathlib import Path

from fvc_loaders.dataset import MetadataDataset

from fvc_core.cli import main

if __name__ == "__main__":
    gate, parked = Path(sys.argv[1]), Path(sys.argv[2])
    read = MetadataDataset.read_video

    def gated(self, *args, **kwargs):
        if gate.exists():
            parked.touch()
            while True:
                time.sleep(1)
        return read(self, *args, **kwargs)

    MetadataDataset.read_video = gated
    sys.exit(main(sys.argv[3:]))
