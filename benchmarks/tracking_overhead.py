"""What tracking costs: the MLflow and DuckDB trackers against no tracker, in one run of this script.

Two measurements, side by side:

1. events: each tracker set receives a run's events (start, an epoch at a time, fold ends
   with real prediction files, run end) in the quickstart's shape (5 folds x 8 epochs), plus
   the import of each plugin's tracker module in a fresh interpreter. Milliseconds per event
   in the calling process, two ways: ``inline`` (the trackers run in this process: what they
   cost) and ``background`` (the default: they run in a child process, and this process pays
   for sending the events and, at ``close``, waiting for the child to finish; with no training
   to overlap, that wait holds nearly all of their work). No training, so nothing else moves
   the numbers.
2. quickstart: ``fvc run examples/quickstart.yaml`` as subprocesses, same data, wall time:
   ``trackers=[]``, ``trackers=[console,mlflow,duckdb]`` (background, the default), the same
   inline (``mlflow.background=false duckdb.background=false``) and the same without MLflow's
   plots (``mlflow.log_plots=false``), in a rotating order (A B C D, then B C D A...).

    .venv/bin/python benchmarks/tracking_overhead.py --events-only
    .venv/bin/python benchmarks/tracking_overhead.py --repeats 1

Writes benchmarks/out/tracking_overhead.json (and a work folder benchmarks/out/tracking/).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
QUICKSTART = ROOT / "examples" / "quickstart.yaml"
TRACKED = "[console,mlflow,duckdb]"
VARIANTS = {
    "none": ["trackers=[]"],
    "tracked": [f"trackers={TRACKED}"],
    "tracked_inline": [f"trackers={TRACKED}", "mlflow.background=false", "duckdb.background=false"],
    "tracked_no_plots": [f"trackers={TRACKED}", "mlflow.log_plots=false"],
}


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


# -- 1. events -----------------------------------------------------------------------------------

def _fold_files(run, fold: int, epochs: int, videos: int = 10):
    """fold_<k>/ written by the trainer's own output functions, as a tracker finds it."""
    from fvc_core.training import outputs
    from fvc_core.training.metrics import compute_metrics

    fold_dir = run.run_dir / f"fold_{fold}"
    fold_dir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(fold)
    labels = [i % 2 for i in range(videos)]
    scores = [min(1.0, max(0.0, 0.3 * y + 0.35 + rng.uniform(-0.3, 0.3))) for y in labels]
    paths = outputs.fold_paths(fold_dir)
    outputs.write_predictions(paths["predictions.parquet"], [f"v{i}.mp4" for i in range(videos)], labels, scores,
                              fold)
    history = [_epoch(e) | {"epoch": e} for e in range(1, epochs + 1)]
    outputs.write_json(paths["history.json"], history)
    metrics = compute_metrics(labels, scores) | {"best_epoch": epochs}
    outputs.write_json(paths["metrics.json"], metrics)
    return outputs.fold_result(fold, fold_dir, metrics, history, epochs)


def _epoch(epoch: int) -> dict[str, float]:
    return {"train_loss": 0.7 / epoch, "val_loss": 0.72 / epoch, "val_acc": 0.5, "val_precision": 0.5,
            "val_recall": 0.5, "val_f1": 0.5, "val_auc": 0.6, "val_ap": 0.6, "val_eer": 0.4, "lr": 5e-4,
            "lr_backbone": 5e-6, "epoch_seconds": 10.0, "data_wait_seconds": 0.1}


def _trackers(names: list[str], background: bool):
    from rich.console import Console

    from fvc_core.plugins import get_registry
    from fvc_core.tracking.background import TrackerHost, background_spec
    from fvc_core.tracking.build import TrackerSet

    registry = get_registry()
    configs = {n: registry.validate("trackers", n, {"background": background}) for n in names}
    factories = {n: registry.get("trackers", n).factory for n in names}
    inline = [] if background else [(n, factories[n](c), False) for n, c in configs.items()]
    trackers = TrackerSet(inline, Console(file=open(os.devnull, "w")))
    if background and names:
        specs = [(n, background_spec(factories[n], c)) for n, c in configs.items()]
        trackers.host = TrackerHost(specs, trackers.warn, trackers.note)
    return trackers


def events(names: list[str], folds: int, epochs: int, work: Path, background: bool) -> dict:
    """Time each event of a run through the core's TrackerSet, as the runner calls trackers."""
    from fvc_core.tracking import RunInfo
    from fvc_core.training import outputs

    output_dir = work / f"events_{'_'.join(names) or 'none'}_{'background' if background else 'inline'}"
    shutil.rmtree(output_dir, ignore_errors=True)
    run_dir = output_dir / "naive_cnn"
    run_dir.mkdir(parents=True)
    config = {"experiment": "bench", "seed": 42, "output_dir": str(output_dir),
              "data": {"name": "synthetic", "num_frames": 8, "size": 64},
              "model": {"name": "naive_cnn", "chunk_size": 8},
              "trainer": {"name": "supervised", "folds": folds, "epochs": epochs}, "trackers": names}
    (run_dir / "config.yaml").write_text(json.dumps(config))
    run = RunInfo(experiment="bench", run_id=uuid.uuid4().hex, config=config, config_hash="0" * 16,
                  model_name="naive_cnn", run_dir=run_dir, folds=folds,
                  protocol={"num_frames": 8, "size": 64, "sampler": "uniform"}, versions={"fvc-core": "0.1.0"})
    results = [_fold_files(run, k, epochs) for k in range(folds)]  # written before timing: the trainer's work
    trackers = _trackers(names, background)

    t = time.perf_counter()
    trackers.open(run_dir)
    trackers.start_run(run)
    start = time.perf_counter() - t
    epoch_times, fold_times = [], []
    for k in range(folds):
        for e in range(1, epochs + 1):
            t = time.perf_counter()
            trackers.log_epoch(k, e, _epoch(e), e * 8)
            epoch_times.append(time.perf_counter() - t)
        t = time.perf_counter()
        trackers.end_fold(results[k])
        fold_times.append(time.perf_counter() - t)
    summary = outputs.write_summary(run, results, [])
    t = time.perf_counter()
    trackers.end_run(summary)
    end = time.perf_counter() - t
    t = time.perf_counter()
    trackers.close()
    close = time.perf_counter() - t
    assert not trackers.warnings, trackers.warnings
    total = start + sum(epoch_times) + sum(fold_times) + end
    return {"start_run_ms": _ms(start), "log_epoch_median_ms": _ms(statistics.median(epoch_times)),
            "log_epoch_max_ms": _ms(max(epoch_times)), "end_fold_median_ms": _ms(statistics.median(fold_times)),
            "end_run_ms": _ms(end), "events_ms": _ms(total), "close_ms": _ms(close)}


def store_build_time() -> float:
    """Seconds to make the MLflow template store, paid once per machine and MLflow version (fresh cache)."""
    code = ("import sys, time; from pathlib import Path; import mlflow, sqlalchemy; "
            "from fvc_mlflow.local_store import ensure_local_store; t = time.perf_counter(); "
            "ensure_local_store(Path(sys.argv[1]) / 'mlflow.db', Path(sys.argv[1]) / 'mlartifacts'); "
            "print(time.perf_counter() - t)")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
        done = subprocess.run([sys.executable, "-c", code, tmp], capture_output=True, text=True, check=True, env=env)
    return float(done.stdout.strip().splitlines()[-1])


def import_time(module: str) -> float:
    """Seconds to import ``module`` in a fresh interpreter (median of 3)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]
    return statistics.median(runs)


# -- 2. quickstart ---------------------------------------------------------------------------------

# `fvc run`, timing what the training process spends on tracking: building the trackers (an inline
# tracker imports its library then), every event, and waiting for background trackers at the end.
TIMED_RUN = """
import json, sys, time
from fvc_core import runner
from fvc_core.tracking import tracker_set as trackers
spent = {"build": 0.0, "events": 0.0, "close": 0.0}
def timed(function, key):
    def call(*args, **kwargs):
        t = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            spent[key] += time.perf_counter() - t
    return call
runner.build_trackers = timed(runner.build_trackers, "build")
for name, key in (("_call", "events"), ("open", "events"), ("close", "close")):
    setattr(trackers.TrackerSet, name, timed(getattr(trackers.TrackerSet, name), key))
from fvc_core.cli import main
code = main(sys.argv[1:])
print("TRACKING_SPENT " + json.dumps(spent))
sys.exit(code)
"""


def quickstart(variant: str, work: Path, index: int, env: dict[str, str]) -> tuple[float, float, dict[str, float]]:
    """Wall seconds, CPU seconds (user + system, the run's DataLoader workers and tracker process
    included), and the seconds the training process spent on tracking (build, events, close).

    Other users of a shared machine move wall and CPU time by more than tracking costs; the time
    spent on tracking is measured inside the run and moves much less.
    """
    out = work / f"quickstart_{variant}_{index}"
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-c", TIMED_RUN, "run", str(QUICKSTART), *VARIANTS[variant], f"output_dir={out}"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    if variant != "none" and "warning" in done.stdout:
        raise SystemExit(f"a tracker was switched off during the run:\n{done.stdout[-3000:]}")
    spent = json.loads(done.stdout.rsplit("TRACKING_SPENT ", 1)[1].splitlines()[0])
    return wall, cpu, {k: round(v, 3) for k, v in spent.items()}


def prepare_data(work: Path) -> None:
    """Make the quickstart's synthetic videos (cwd-relative data/synthetic) before any timed run."""
    code = ("from fvc_core.config import load_config; from fvc_core.plugins import get_registry; "
            f"c = load_config({str(QUICKSTART)!r}); "
            "get_registry().get('datasets', c.data.name).factory(c.data.config).table()")
    subprocess.run([sys.executable, "-c", code], cwd=work, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events-only", action="store_true", help="skip the quickstart runs")
    parser.add_argument("--repeats", type=int, default=1, help="pairs of quickstart runs (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the quickstart runs (default 1)")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    work = OUT / "tracking"
    work.mkdir(exist_ok=True)
    report: dict = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}",
        "load_average_at_start": os.getloadavg(),
    }
    os.environ.pop("MLFLOW_TRACKING_URI", None)

    with tempfile.TemporaryDirectory() as tmp:
        shape = {"folds": 5, "epochs": 8}
        report["events"] = {"shape": shape}
        for background in (False, True):
            way = report["events"]["background" if background else "inline"] = {}
            for names in ([], ["mlflow"], ["duckdb"], ["mlflow", "duckdb"]):
                way["+".join(names) or "none"] = events(names, shape["folds"], shape["epochs"], Path(tmp), background)
    report["import_s"] = {m: round(import_time(m), 3) for m in
                          ("fvc_core.runner", "fvc_mlflow.tracker", "fvc_duckdb.tracker")}
    report["mlflow_template_store_build_s"] = round(store_build_time(), 3)
    print(json.dumps({k: report[k] for k in ("events", "import_s", "mlflow_template_store_build_s")}, indent=2))

    if not args.events_only:
        env = {**os.environ, "CI": "1", "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
        prepare_data(work)
        names = list(VARIANTS)
        walls: dict[str, list[float]] = {name: [] for name in names}
        cpus: dict[str, list[float]] = {name: [] for name in names}
        spent: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        for i in range(args.repeats):
            for variant in names[i % len(names):] + names[:i % len(names)]:
                wall, cpu, tracking = quickstart(variant, work, i, env)
                walls[variant].append(round(wall, 2))
                cpus[variant].append(round(cpu, 2))
                spent[variant].append(tracking)
                print(f"quickstart {variant} #{i}: {wall:.1f} s wall, {cpu:.1f} s CPU, tracking in the training "
                      f"process {sum(tracking.values()):.2f} s {tracking}", flush=True)
        none, none_cpu = statistics.mean(walls["none"]), statistics.mean(cpus["none"])
        inline = report["events"]["inline"]
        estimate = (inline["mlflow"]["events_ms"] + inline["duckdb"]["events_ms"]) / 1000
        estimate += report["import_s"]["fvc_mlflow.tracker"] + report["import_s"]["fvc_duckdb.tracker"]
        report["quickstart"] = {
            "overrides": VARIANTS, "wall_s": walls, "cpu_s": cpus, "tracking_in_training_process_s": spent,
            "tracking_in_training_process_pct": {
                v: round(100 * statistics.mean(sum(t.values()) for t in spent[v]) / none, 2) for v in names[1:]},
            "wall_overhead_pct": {v: round(100 * (statistics.mean(walls[v]) - none) / none, 2) for v in names[1:]},
            "cpu_overhead_s": {v: round(statistics.mean(cpus[v]) - none_cpu, 2) for v in names[1:]},
            "cpu_overhead_pct": {v: round(100 * (statistics.mean(cpus[v]) - none_cpu) / none_cpu, 2)
                                 for v in names[1:]},
            # Each tracker's events as the training process paid them inline (the mlflow set runs first,
            # cold), plus the imports, against the untracked run's wall time: what background tracking hides.
            "events_estimate_s": round(estimate, 2),
            "events_estimate_pct": round(100 * estimate / none, 2),
        }
        print(json.dumps(report["quickstart"], indent=2))
    report["load_average_at_end"] = os.getloadavg()
    (OUT / "tracking_overhead.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
