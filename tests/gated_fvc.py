"""``python -m tests.gated_fvc GATE PARKED fvc-args...``: the real ``fvc`` command line, except that once
the file GATE exists, the next video read parks the process for good (creating PARKED to say so). A read is a
training read, or the 13th frame of a video that ``fvc prepare --faces`` crops: by then x264 has begun to write
the clip (it holds about ten frames first), so a kill leaves a half-written file, as a real one would.

A test that must kill a run in a given state (say, fold 1 checkpointed but not finished) waits for
PARKED and kills then, instead of polling for a file and hoping to kill inside a short time window.
Reads happen in the main process when trainer.num_workers is 0 (``fvc prepare -j 1``).
"""

import sys
import time
from pathlib import Path

import fvc_loaders.reader
from fvc_loaders.dataset import MetadataDataset

from fvc_core.cli import main

PREPARE_FRAMES = 12

if __name__ == "__main__":
    gate, parked = Path(sys.argv[1]), Path(sys.argv[2])
    read, frames = MetadataDataset.read_video, fvc_loaders.reader.iter_frames

    def park():
        parked.touch()
        while True:
            time.sleep(1)

    def gated(self, *args, **kwargs):
        if gate.exists():
            park()
        return read(self, *args, **kwargs)

    def gated_frames(*args, **kwargs):
        for n, frame in enumerate(frames(*args, **kwargs)):
            if n >= PREPARE_FRAMES and gate.exists():
                park()
            yield frame

    MetadataDataset.read_video = gated
    fvc_loaders.reader.iter_frames = gated_frames
    sys.exit(main(sys.argv[3:]))
