"""One throw-away plugin distribution for the runner's tests: a dataset, a model, a trainer, two trackers.

``recorder`` keeps events in this process (``EVENTS``); ``journal`` appends them to a file with the
pid of the process that saw them, so tests see where a background tracker ran, and in what order.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from tests.builders import write_distribution

SOURCE = '''
import json, os, time
from pydantic import BaseModel, ConfigDict
from fvc_core.hookspecs import hookimpl
from fvc_core.tracking import FoldResult, RunSummary, Tracker, TrackerConfig

EVENTS = []

class Data:
    def __init__(self, cfg): pass
    def protocol(self): return {"num_frames": 4}

class TrainerCfg(BaseModel):
    model_config = ConfigDict(extra="forbid")
    crash: bool = False
    folds: int = 1
    burst: int = 0

class Trainer:
    def __init__(self, cfg): self.cfg = cfg
    def run(self, job):
        EVENTS.append(("model", job.build_model()))
        if self.cfg.crash:
            raise RuntimeError("trainer crashed")
        for epoch in range(self.cfg.burst):  # far more than a socket buffer holds
            job.trackers.log_epoch(0, epoch, {f"metric_{i}": float(i) for i in range(100)}, epoch)
        (job.run.run_dir / "sent.flag").touch()
        results = []
        for k in range(self.cfg.folds):
            job.trackers.log_epoch(k, 1, {"train_loss": 0.5}, 1)
            result = FoldResult(k, {"roc_auc": 0.9}, job.run.run_dir, job.run.run_dir / "p.parquet")
            job.trackers.end_fold(result)
            results.append(result)
            if os.environ.get("FVCTEST_HANG"):
                print("hanging", flush=True)
                time.sleep(600)
        return RunSummary(job.run, results, {"roc_auc": 0.9}, {"roc_auc": 0.0})

class RecorderCfg(TrackerConfig):
    broken: bool = False

class Recorder(Tracker):
    def __init__(self, cfg): self.cfg = cfg
    def check(self, run):
        EVENTS.append(("check", run.run_dir.is_dir()))
        if self.cfg.broken: raise ConnectionError("server unreachable")
    def start_run(self, run):
        if self.cfg.broken: raise ConnectionError("server unreachable")
        EVENTS.append(("start", run.resumed))
    def log_epoch(self, fold, epoch, metrics, step): EVENTS.append(("epoch", fold, epoch, metrics))
    def end_fold(self, result): EVENTS.append(("fold", result.metrics))
    def end_run(self, summary): EVENTS.append(("end", summary.mean))
    def fail_run(self, run, error): EVENTS.append(("fail", error))

class JournalCfg(TrackerConfig):
    background: bool = True
    journal: str = "journal.jsonl"
    broken: bool = False
    exit_in: str | None = None
    slow_fail_s: float = 0.0
    slow_end_s: float = 0.0
    wait_for_sent: bool = False

class Journal(Tracker):
    def __init__(self, cfg):
        self.cfg = cfg
        self._write("built")
    def _write(self, *event):
        if event[0] == self.cfg.exit_in:
            os._exit(3)
        with open(self.cfg.journal, "a") as f:
            f.write(json.dumps([os.getpid(), *event]) + "\\n")
    def start_run(self, run):
        if self.cfg.broken:
            raise ConnectionError("server unreachable")
        if self.cfg.wait_for_sent:
            deadline = time.monotonic() + 60
            while not (run.run_dir / "sent.flag").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            self._write("sent", (run.run_dir / "sent.flag").exists())
        self._write("start", run.resumed)
    def log_epoch(self, fold, epoch, metrics, step): self._write("epoch", fold)
    def end_fold(self, result): self._write("fold", result.fold)
    def end_run(self, summary):
        time.sleep(self.cfg.slow_end_s)
        self._write("end", len(summary.folds))
    def fail_run(self, run, error):
        time.sleep(self.cfg.slow_fail_s)
        self._write("fail", error)

@hookimpl
def register_datasets(register): register("d", Data)
@hookimpl
def register_models(register): register("m", lambda cfg: "a model")
@hookimpl
def register_trainers(register): register("t", Trainer, config=TrainerCfg)
@hookimpl
def register_trackers(register):
    register("recorder", Recorder, config=RecorderCfg)
    register("journal", Journal, config=JournalCfg)
'''


def install(site: Path) -> ModuleType:
    """Install the distribution into ``site`` and import it, its EVENTS empty."""
    write_distribution(site, "fvctest-all", {"fvctest_all": SOURCE}, {"all": "fvctest_all"})
    import fvctest_all

    fvctest_all.EVENTS.clear()
    return fvctest_all
