"""Does an adaptive search (Optuna's TPE) find a better point than fvc's own ``random:`` on the same budget?

    .venv/bin/python -m pip install optuna        # the benchmark's own need: fvc does not depend on it
    nice -n 10 .venv/bin/python benchmarks/sweep_search.py [--points 12] [--seeds 0 1 ... 11] [--epochs 3]

The problem: real tiny fvc runs (naive_cnn, 2 group-aware folds, ``--epochs`` epochs, 4 frames at
32 px, no augmentation) on the quickstart generator's clips (``--videos`` sources, a real and a fake
each, 32 px, encoded with PyAV), over a space where the learning rate decides (checked by hand:
lr 1e-5 gives a mean test AUC of 0.57, 1e-3 0.97, 1e-1 0.61):

    trainer.lr            loguniform 1e-5 .. 1e-1
    trainer.weight_decay  loguniform 1e-6 .. 1e-1
    trainer.grad_accum    int 1 .. 16          (with lr: the step size and the number of steps)
    model.dropout         uniform 0 .. 0.9

For each search seed S (also the experiment's seed, so each S is its own folds and initialisations,
the same for every strategy), ``--points`` points of each strategy:

- random: fvc's ``sweep: {random: {points: N, seed: S, keys: ...}}`` draws (fvc_core.sweeps.spec.draw);
- tpe: ``optuna.samplers.TPESampler(seed=S)`` as it comes (the first 10 trials are random);
- tpe4: the same with ``n_startup_trials=4, multivariate=True`` (adaptive from the 5th point).

Every point is run through fvc's API as a sweep point is (fvc_core.config.apply_overrides, resolve,
runner.run_experiment) and scored as ``fvc sweep`` ranks it: the mean over folds of the validation
metric the trainer chose epochs on (``val_loss`` at each fold's best epoch, lower is better); Optuna
is told that number (ask/tell). Never the test metric: it is only read for the chosen point.

Reported per seed and strategy: the best validation loss after 4, 8 and N points, and the mean test
ROC AUC of the point chosen after N (the lowest validation loss); then means over seeds and the
paired difference (tpe - random) with its standard error. Results are kept in
benchmarks/out/sweep_search.json as they come: a rerun reuses the points already run (the runs are
deterministic on CPU) and prints the table.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "out"
SPACE: dict[str, dict[str, list[Any]]] = {
    "trainer.lr": {"loguniform": [1.0e-5, 1.0e-1]},
    "trainer.weight_decay": {"loguniform": [1.0e-6, 1.0e-1]},
    "trainer.grad_accum": {"int": [1, 16]},
    "model.dropout": {"uniform": [0.0, 0.9]},
}
STRATEGIES = ("random", "tpe", "tpe4")
CHECKPOINTS = (4, 8, 12)


def base_config(table: Path, epochs: int) -> dict[str, Any]:
    return {
        "experiment": "search", "seed": 0, "output_dir": "unused",
        "data": {"name": "metadata", "metadata": str(table), "group_column": "source_id", "num_frames": 4,
                 "size": 32, "augment": False},
        "model": {"name": "naive_cnn", "chunk_size": 4},
        "trainer": {"name": "supervised", "folds": 2, "epochs": epochs, "warmup_epochs": 0, "num_workers": 0,
                    "early_stopping": {"patience": None, "metric": "val_loss"}},
        "trackers": [],
    }


def evaluate(base: dict[str, Any], values: dict[str, Any], seed: int, work: Path) -> dict[str, Any]:
    """One point, run as a sweep point is: (mean validation loss at the chosen epochs, mean test AUC)."""
    from rich.console import Console

    from fvc_core.config import apply_overrides, resolve
    from fvc_core.runner import run_experiment

    out_dir = Path(tempfile.mkdtemp(prefix="point-", dir=work))
    data = apply_overrides(base, [f"seed={seed}", f"output_dir={out_dir}"], "benchmark",
                          settings=list(values.items()))
    config = resolve(data, source="benchmark")
    started = time.monotonic()
    summary = run_experiment(config, fresh=True, console=Console(file=io.StringIO()))
    folds = [json.loads((Path(f.fold_dir) / "metrics.json").read_text()) for f in summary.folds]
    shutil.rmtree(out_dir, ignore_errors=True)
    val = [float(f["best_metric_value"]) for f in folds]
    return {"values": values, "val_loss": statistics.fmean(val) if all(map(math.isfinite, val)) else math.inf,
            "test_auc": statistics.fmean(float(f["roc_auc"]) for f in folds),
            "wall_s": round(time.monotonic() - started, 2)}


class Cache:
    """Points already run, by seed and values: a rerun (or a resumed one) does not train them again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def key(self, seed: int, values: dict[str, Any]) -> str:
        return json.dumps([seed, values], sort_keys=True)

    def get(self, seed: int, values: dict[str, Any]) -> dict[str, Any] | None:
        return self.data.setdefault("points", {}).get(self.key(seed, values))

    def put(self, seed: int, values: dict[str, Any], result: dict[str, Any]) -> None:
        self.data.setdefault("points", {})[self.key(seed, values)] = result
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1))
        tmp.replace(self.path)


def run_point(cache: Cache, base: dict[str, Any], values: dict[str, Any], seed: int, work: Path,
              label: str) -> dict[str, Any]:
    result = cache.get(seed, values)
    if result is None:
        result = evaluate(base, values, seed, work)
        cache.put(seed, values, result)
        shown = " ".join(f"{k.rsplit('.', 1)[-1]}={v:.3g}" for k, v in values.items())
        print(f"{label}: {shown}: val_loss {result['val_loss']:.4f} test_auc {result['test_auc']:.3f} "
              f"({result['wall_s']:.1f} s)", flush=True)
    return result


def random_search(cache: Cache, base: dict[str, Any], seed: int, points: int, work: Path) -> list[dict[str, Any]]:
    from fvc_core.sweeps.spec import RandomSweep, draw

    drawn = draw(RandomSweep(points=points, seed=seed, keys=SPACE))
    return [run_point(cache, base, v, seed, work, f"random s{seed} #{i + 1}") for i, v in enumerate(drawn)]


def optuna_space() -> dict[str, Any]:
    from optuna.distributions import FloatDistribution, IntDistribution

    out: dict[str, Any] = {}
    for key, spec in SPACE.items():
        kind, (low, high) = next(iter(spec.items()))
        out[key] = (IntDistribution(int(low), int(high)) if kind == "int"
                    else FloatDistribution(low, high, log=kind == "loguniform"))
    return out


def tpe_search(cache: Cache, base: dict[str, Any], seed: int, points: int, work: Path,
               startup: int | None) -> list[dict[str, Any]]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (optuna.samplers.TPESampler(seed=seed) if startup is None else
               optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=True))
    study = optuna.create_study(direction="minimize", sampler=sampler)
    space = optuna_space()
    name = "tpe" if startup is None else f"tpe{startup}"
    trace = []
    for i in range(points):
        trial = study.ask(space)
        result = run_point(cache, base, dict(trial.params), seed, work, f"{name} s{seed} #{i + 1}")
        study.tell(trial, result["val_loss"])
        trace.append(result)
    return trace


def checkpoints(points: int) -> list[int]:
    return sorted({n for n in CHECKPOINTS if n <= points} | {points})


def summarise(trace: list[dict[str, Any]]) -> dict[str, Any]:
    """Best validation loss after each checkpoint, and the test AUC of the point chosen on validation."""
    out: dict[str, Any] = {}
    for n in checkpoints(len(trace)):
        chosen = min(trace[:n], key=lambda r: r["val_loss"])
        out[f"val@{n}"] = chosen["val_loss"]
        out[f"test@{n}"] = chosen["test_auc"]
    out["chosen"] = min(trace, key=lambda r: r["val_loss"])["values"]
    return out


def mean_se(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    se = statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    return mean, se


def report(results: dict[str, dict[int, dict[str, Any]]], seeds: list[int], points: int) -> str:
    checks = checkpoints(points)
    lines = ["| strategy | seed | " + " | ".join(f"best val_loss @{n}" for n in checks) +
             f" | chosen point's test AUC @{points} |",
             "|---|---|" + "---|" * (len(checks) + 1)]
    for name in STRATEGIES:
        for seed in seeds:
            row = results[name][seed]
            lines.append(f"| {name} | {seed} | " + " | ".join(f"{row[f'val@{n}']:.4f}" for n in checks) +
                         f" | {row[f'test@{points}']:.3f} |")
    lines += ["", "| strategy | " + " | ".join(f"best val_loss @{n}" for n in checks) +
              f" | test AUC @{points} |", "|---|" + "---|" * (len(checks) + 1)]
    for name in STRATEGIES:
        cells = []
        for metric in [*(f"val@{n}" for n in checks), f"test@{points}"]:
            m, se = mean_se([results[name][s][metric] for s in seeds])
            cells.append(f"{m:.4f} ± {se:.4f}" if metric.startswith("val") else f"{m:.3f} ± {se:.3f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "Paired difference over seeds, mean ± standard error (val_loss: negative is better for the "
              "first; test AUC: positive is):", ""]
    for name in STRATEGIES[1:]:
        cells = []
        for metric in [*(f"val@{n}" for n in checks), f"test@{points}"]:
            m, se = mean_se([results[name][s][metric] - results["random"][s][metric] for s in seeds])
            cells.append(f"{metric} {m:+.4f} ± {se:.4f}")
        lines.append(f"- {name} - random: " + ", ".join(cells))
    from scipy import stats

    lines += ["", "The chosen point's test AUC, seed by seed:", ""]
    for name in STRATEGIES[1:]:
        diffs = [results[name][s][f"test@{points}"] - results["random"][s][f"test@{points}"] for s in seeds]
        p = stats.wilcoxon(diffs).pvalue if len(diffs) > 5 and any(diffs) else math.nan
        lines.append(f"- {name} better than random in {sum(d > 0 for d in diffs)} of {len(diffs)} seeds, worse in "
                     f"{sum(d < 0 for d in diffs)}; Wilcoxon signed-rank p = {p:.2f}")
    return "\n".join(lines)


def noise(cache: Cache, seeds: list[int]) -> str:
    """How far the validation loss a search drives down says the test AUC, over every point run."""
    from scipy import stats

    rows = [r for key, r in cache.data.get("points", {}).items() if json.loads(key)[0] in seeds]
    good = [r for r in rows if r["val_loss"] < 0.70]
    rho = stats.spearmanr([r["val_loss"] for r in rows], [r["test_auc"] for r in rows]).statistic
    rho_good = stats.spearmanr([r["val_loss"] for r in good], [r["test_auc"] for r in good]).statistic
    return (f"Validation against test over the {len(rows)} points run: Spearman rho(val_loss, test AUC) = "
            f"{rho:.2f}; among the {len(good)} with val_loss < 0.70 (where a search chooses): {rho_good:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=12)
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(12)))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--videos", type=int, default=32, help="sources; a real and a fake clip each")
    parser.add_argument("--out", type=Path, default=OUT / "sweep_search.json")
    args = parser.parse_args()
    try:
        import optuna  # noqa: F401
    except ImportError:
        sys.exit("benchmarks/sweep_search.py needs Optuna (not a dependency of fvc): pip install optuna")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)  # a 2-core machine shared with others
    from fvc_loaders.synthetic import make_synthetic_dataset

    data_dir = OUT / "sweep_search_data"
    table = make_synthetic_dataset(data_dir, videos=args.videos, frames=8, frame_size=32, seed=11)
    base = base_config(table, args.epochs)
    cache = Cache(args.out)
    cache.data["settings"] = {"points": args.points, "epochs": args.epochs, "videos": args.videos,
                              "space": SPACE, "argv": sys.argv[1:]}
    work = Path(tempfile.mkdtemp(prefix="fvc-sweep-search-"))
    started = time.monotonic()
    results: dict[str, dict[int, dict[str, Any]]] = {name: {} for name in STRATEGIES}
    try:
        for seed in args.seeds:
            results["random"][seed] = summarise(random_search(cache, base, seed, args.points, work))
            results["tpe"][seed] = summarise(tpe_search(cache, base, seed, args.points, work, None))
            results["tpe4"][seed] = summarise(tpe_search(cache, base, seed, args.points, work, 4))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cache.data["results"] = {name: {str(s): r for s, r in rows.items()} for name, rows in results.items()}
    cache.data["wall_s_last_invocation"] = round(time.monotonic() - started, 1)
    cache.save()
    print(report(results, args.seeds, args.points))
    print(noise(cache, args.seeds))


if __name__ == "__main__":
    main()
