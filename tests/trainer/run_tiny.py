"""``python -m tests.trainer.run_tiny OUT_DIR [DELAY]``: the tiny run of the resume tests, in its own process."""

import sys
from pathlib import Path

import torch

from fvc_core.training.trainer import SupervisedTrainer
from tests.trainer.helpers import TinyDataset, make_job, small_config

# val_loss keeps improving on this easy data, so the last epochs (the resumed ones) pick the model.
RESUME_CONFIG = {"folds": 2, "epochs": 4, "grad_accum": 2, "early_stopping": {"metric": "val_loss"}}

if __name__ == "__main__":
    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    config = small_config(**RESUME_CONFIG)
    job = make_job(out, config, dataset=TinyDataset(delay=delay))
    try:
        SupervisedTrainer(config).run(job)
    finally:
        print(job.output.getvalue())
