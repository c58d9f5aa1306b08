"""The MLflow tracker: one parent run per ``fvc run``, one nested child run per fold.

Everything goes through ``MlflowClient`` with explicit run ids, never the fluent
``mlflow.start_run`` API: no process-global active run to collide with another
tracker, a notebook's own run, or a second fold.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_GIT_COMMIT, MLFLOW_PARENT_RUN_ID

from fvc_core.contract import (
    INTERRUPTED,
    KILLED,
    Evaluation,
    FoldResult,
    RunInfo,
    RunSummary,
    Tracker,
    history_steps,
    one_line,
    selected_value,
    test_metric_name,
    write_atomic,
)
from fvc_mlflow.config import MlflowConfig
from fvc_mlflow.local_store import ensure_local_store, sqlite_file, usable_problem
from fvc_mlflow.params import as_test_metrics, flatten, numeric

STATE_FILE = Path("tracking") / "mlflow.json"
# log_batch limits: 100 params or tags, 1000 metrics per call.
PARAMS_PER_BATCH = 100
METRICS_PER_BATCH = 1000
# Keys of an epoch's dict that are coordinates, not metrics.
NOT_METRICS = {"epoch", "step", "fold"}



EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

class MlflowUnavailable(RuntimeError):
    """The tracking store cannot be reached or opened."""


def default_tracking_uri(output_dir: Path) -> str:
    """The local SQLite store of a run's output folder (MLflow refuses plain-folder stores now)."""
    return f"sqlite:///{Path(output_dir).resolve() / 'mlflow.db'}"


@contextlib.contextmanager
def environment(**values: str) -> Iterator[None]:
    """MLflow reads these settings from the environment at each call; set them for one block only."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def quick_http(timeout_s: int) -> contextlib.AbstractContextManager[None]:
    """No retries and a short timeout: MLflow's defaults retry a dead server for minutes."""
    return environment(MLFLOW_HTTP_REQUEST_MAX_RETRIES="0", MLFLOW_HTTP_REQUEST_TIMEOUT=str(timeout_s))


def _why(exc: BaseException) -> str:
    """A one-line reason out of MLflow's multi-line, nested request errors."""
    text = str(exc)
    for marker, reason in (("Connection refused", "connection refused"),
                           ("timed out", "no answer in time"),
                           ("Name or service not known", "unknown host"),
                           ("unable to open database file", "unable to open the database file")):
        if marker in text:
            return reason
    return one_line(exc, 200)


def _git_commit(cwd: Path) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@contextlib.contextmanager
def _sweep_lock(run: RunInfo) -> Iterator[None]:
    """Held while a point finds or settles its sweep's run: a lock file in the sweep's folder (fvc's),
    taken by every tracker process of the sweep's points."""
    try:
        import fcntl
    except ImportError:  # no POSIX locks (Windows): unguarded, as a sweep one point at a time needs none
        yield
        return
    path = Path(run.run_dir).parent / ".mlflow-sweep.lock"
    try:
        handle = open(path, "a+")  # noqa: SIM115 - closed below
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # per open file: threads of one process exclude each other too
        yield


def _now_ms() -> int:
    return int(time.time() * 1000)


class MlflowTracker(Tracker):
    name = "mlflow"

    def __init__(self, config: MlflowConfig):
        self.config = config
        self.client: MlflowClient | None = None
        self.uri: str | None = None
        self.run: RunInfo | None = None
        self.experiment_id: str | None = None
        self.parent_id: str | None = None
        self.children: dict[int, str] = {}
        self.ended: set[int] = set()
        self._reopened: set[int] = set()
        self._common_tags: dict[str, str] = {}
        self._pending: dict[int, list[Metric]] = {}  # fold -> epoch metrics not sent yet
        self._sent_at = -math.inf
        self.sweep_id: str | None = None

    # -- store ---------------------------------------------------------------------------------

    def tracking_uri(self, output_dir: Path | None) -> str | None:
        """config > $MLFLOW_TRACKING_URI > the SQLite file in the output folder (None: not known yet)."""
        uri = self.config.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
        if uri:
            return uri
        return default_tracking_uri(output_dir) if output_dir is not None else None

    def open(self, uri: str) -> MlflowClient:
        """A client whose store answered one request; MlflowUnavailable says why not."""
        # Creating a new SQLite store logs its schema migration at INFO; not news for the user.
        # It also logs each failed statement at ERROR with a traceback: the run's one-line warning says it.
        logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        client = MlflowClient(tracking_uri=uri)
        try:
            with quick_http(self.config.probe_timeout_s):
                client.search_experiments(max_results=1)
        except Exception as exc:
            raise MlflowUnavailable(f"cannot reach the MLflow tracking store {uri}: {_why(exc)}") from None
        return client

    def check(self, run: RunInfo | None = None) -> None:
        """Probe the tracking store. Before a run is known, the default store's folder is not: skip it."""
        uri = self.tracking_uri(run.run_dir.parent if run else None)
        if uri is not None:
            self._prepare(uri, run.run_dir.parent if run else None)
            self.open(uri)

    def _prepare(self, uri: str, output_dir: Path | None) -> None:
        """A SQLite store made whole if new, and checked writable, before MLflow opens it."""
        db = sqlite_file(uri)
        if db is None:
            return
        if output_dir is not None and uri == default_tracking_uri(output_dir):
            artifact_root = Path(output_dir) / "mlartifacts"
        else:
            artifact_root = Path("mlruns")  # MLflow's own default for a SQLite store without a server
        try:
            ensure_local_store(db, artifact_root)
        except OSError as exc:
            from fvc_core.contract import is_disk_full

            why = "no space left on the device" if is_disk_full(exc) else (exc.strerror or str(exc))
            raise MlflowUnavailable(f"cannot create the MLflow store {db}: {why}") from None
        problem = usable_problem(db)
        if problem is not None:
            raise MlflowUnavailable(f"cannot write to the MLflow store {db}: {problem}; make it writable or "
                                    "point mlflow.tracking_uri elsewhere") from None

    def _experiment(self, run: RunInfo) -> str:
        experiment_id = self._find_or_create_experiment(run)
        # Declares what fvc's experiments are (MLflow 3 reads this tag to tell model training from GenAI
        # work); a kind the user chose is left alone. What opens the UI on the runs is the link's
        # `?workflowType=machine_learning` (docs/tracking.md): the tag alone did not, in MLflow 3.17.
        experiment = self.client.get_experiment(experiment_id)
        if EXPERIMENT_KIND_TAG not in (experiment.tags or {}):
            try:
                self.client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
            except Exception:
                # Two runs starting at once on a new store both saw the tag missing; SQLite refuses the
                # second insert. Only a tag that is still missing is a failure.
                if EXPERIMENT_KIND_TAG not in (self.client.get_experiment(experiment_id).tags or {}):
                    raise
        return experiment_id

    def _find_or_create_experiment(self, run: RunInfo) -> str:
        name = self.config.experiment_name or run.experiment
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = self.config.artifact_location
        if location is None and self.uri == default_tracking_uri(run.run_dir.parent):
            # Beside mlflow.db, not MLflow's default ./mlruns in whatever folder fvc was started from.
            location = (run.run_dir.parent / "mlartifacts").resolve().as_uri()
        try:
            return self.client.create_experiment(name, artifact_location=location)
        except Exception:
            # Another process created it between our lookup and create.
            experiment = self.client.get_experiment_by_name(name)
            if experiment is None:
                raise
            return experiment.experiment_id

    # -- resume state --------------------------------------------------------------------------

    def _state_path(self) -> Path:
        return self.run.run_dir / STATE_FILE

    def _save_state(self) -> None:
        path = self._state_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        state = {
            "fvc_run_id": self.run.run_id,
            "tracking_uri": self.uri,
            "experiment_id": self.experiment_id,
            "parent_run_id": self.parent_id,
            "fold_runs": {str(k): v for k, v in sorted(self.children.items())},
            "ended_folds": sorted(self.ended),
        }
        write_atomic(path, json.dumps(state, indent=2))

    def _resume(self) -> bool:
        """Find the parent and fold runs of an earlier attempt of this fvc run: state file, else tags."""
        path = self._state_path()
        try:
            state = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            state = {}
        if (state.get("fvc_run_id") == self.run.run_id and state.get("tracking_uri") == self.uri
                and self._alive(state.get("parent_run_id"))):
            self.parent_id = state["parent_run_id"]
            self.children = {int(k): v for k, v in state.get("fold_runs", {}).items() if self._alive(v)}
            self.ended = {int(k) for k in state.get("ended_folds", []) if int(k) in self.children}
            return True
        # No usable state file (deleted, or written for another store): the fvc.run_id tag finds them.
        found = self.client.search_runs(
            [self.experiment_id], f"tags.`fvc.run_id` = '{self.run.run_id}'", order_by=["attributes.start_time ASC"]
        )
        parents = [r for r in found if r.data.tags.get("fvc.role") == "parent"]
        if not parents:
            return False
        self.parent_id = parents[0].info.run_id
        for r in found:
            if r.data.tags.get("fvc.role") == "fold" and r.data.tags.get(MLFLOW_PARENT_RUN_ID) == self.parent_id:
                fold = int(r.data.tags["fold"])
                self.children.setdefault(fold, r.info.run_id)
                if r.info.status == "FINISHED":
                    self.ended.add(fold)
        return True

    def _alive(self, run_id: str | None) -> bool:
        if not run_id:
            return False
        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except Exception:
            return False

    # -- events --------------------------------------------------------------------------------

    def _tags(self, run: RunInfo) -> dict[str, str]:
        tags = {
            "fvc.run_id": run.run_id,
            "model_type": run.model_name,
            "config_hash": run.config_hash,
            "experiment": run.experiment,
        }
        tags.update({f"version.{name}": str(v) for name, v in run.versions.items()})
        commit = _git_commit(Path.cwd())
        if commit:
            tags[MLFLOW_GIT_COMMIT] = commit
            tags["git_commit"] = commit
        return tags

    def start_run(self, run: RunInfo) -> None:
        self.run = run
        self.uri = self.tracking_uri(run.run_dir.parent)
        self._prepare(self.uri, run.run_dir.parent)
        # The probe fails in seconds on a dead server, where MLflow's own retries would take minutes.
        self.client = self.open(self.uri)
        self.experiment_id = self._experiment(run)
        self.children, self.ended, self._reopened = {}, set(), set()
        self._common_tags = self._tags(run)
        if run.resumed and self._resume():
            self._sweep_tags(run)
            # A folder an older fvc made gets this version's hash of the same experiment (config_identity).
            self.client.set_tag(self.parent_id, "config_hash", run.config_hash)
            self.client.update_run(self.parent_id, status="RUNNING")
            self._save_state()
            return
        sweep_tags = self._sweep_tags(run)
        parent = self.client.create_run(
            self.experiment_id,
            run_name=run.sweep["point"] if run.sweep else f"{run.model_name}-{run.config_hash[:8]}",
            tags={**self._common_tags, "fvc.role": "parent", **sweep_tags},
        )
        self.parent_id = parent.info.run_id
        self._save_state()
        params = flatten(run.config)
        params.update(flatten({"protocol": run.protocol}))
        params["folds"] = str(run.folds)
        items = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(items), PARAMS_PER_BATCH):
            self.client.log_batch(self.parent_id, params=items[i:i + PARAMS_PER_BATCH])
        config_file = run.run_dir / "config.yaml"
        if config_file.exists():
            self.client.log_artifact(self.parent_id, str(config_file))
        else:
            self._log_text(self.parent_id, "config.json", json.dumps(run.config, indent=2, default=str))

    def _sweep_tags(self, run: RunInfo) -> dict[str, str]:
        """A point of `fvc sweep`: its run goes under the sweep's own run (made by the first point),
        so MLflow shows sweep -> points -> folds. Marked running while a point runs."""
        if not run.sweep:
            return {}
        name = str(run.sweep["name"])
        # Points side by side start at once: without the lock, two would each make a sweep run.
        with _sweep_lock(run):
            found = self.client.search_runs([self.experiment_id], f"tags.`fvc.role` = 'sweep' AND "
                                            f"tags.`fvc.sweep` = '{name}'", order_by=["attributes.start_time ASC"],
                                            max_results=1)
            if found:
                self.sweep_id = found[0].info.run_id
                self.client.update_run(self.sweep_id, status="RUNNING")
            else:
                self.sweep_id = self.client.create_run(
                    self.experiment_id, run_name=f"sweep {name}",
                    tags={"fvc.role": "sweep", "fvc.sweep": name, "experiment": run.experiment,
                          "selection_metric": str(run.sweep.get("metric"))}).info.run_id
        return {MLFLOW_PARENT_RUN_ID: self.sweep_id, "fvc.sweep": name, "fvc.point": str(run.sweep["point"])}

    def _settle_sweep(self, *, interrupted: bool) -> None:
        """The sweep run's status once this point has ended: running while another point runs or is
        still to come; then FINISHED when every point finished, FAILED when one failed, KILLED when
        the sweep was stopped. Its points may end in any order (side by side on Ray)."""
        if not self.sweep_id or not self.run or not self.run.sweep:
            return
        with _sweep_lock(self.run):
            points: dict[str, str] = {}
            for child in self.client.search_runs(
                    [self.experiment_id], f"tags.`{MLFLOW_PARENT_RUN_ID}` = '{self.sweep_id}'", max_results=50000):
                point = child.data.tags.get("fvc.point")
                if point:
                    points[point] = child.info.status
            statuses = set(points.values())
            if "RUNNING" in statuses:
                return
            total = int(self.run.sweep.get("points") or 0)
            if statuses <= {"FINISHED"} and len(points) >= total:
                self.client.set_terminated(self.sweep_id, "FINISHED")
            elif interrupted:
                self.client.set_terminated(self.sweep_id, "KILLED")
            elif len(points) >= total:
                self.client.set_terminated(self.sweep_id, "FAILED")

    def _child(self, fold: int) -> str:
        run_id = self.children.get(fold)
        if run_id is None:
            child = self.client.create_run(
                self.experiment_id,
                run_name=f"fold_{fold}",
                tags={**self._common_tags, MLFLOW_PARENT_RUN_ID: self.parent_id, "fvc.role": "fold",
                      "fold": str(fold)},
            )
            run_id = self.children[fold] = child.info.run_id
            # Each fold's numbers carry how they were measured, not only the parent's.
            protocol = [Param(k, v) for k, v in flatten({"protocol": self.run.protocol}).items()]
            for i in range(0, len(protocol), PARAMS_PER_BATCH):
                self.client.log_batch(run_id, params=protocol[i:i + PARAMS_PER_BATCH])
            self._reopened.add(fold)
            self._save_state()
        elif fold not in self._reopened:
            # A fold run that an interrupted attempt left FAILED/KILLED goes on.
            self.client.update_run(run_id, status="RUNNING")
            self._reopened.add(fold)
        return run_id

    def log_epoch(self, fold: int, epoch: int, metrics: dict[str, float], step: int) -> None:
        self._pending.setdefault(fold, []).extend(_epoch_batch(epoch, metrics, step))
        if time.monotonic() - self._sent_at >= self.config.flush_every_s:
            self._flush()

    def _flush(self) -> None:
        """Send the epochs held back, one batch per fold run."""
        for fold in sorted(self._pending):
            batch = self._pending[fold]
            run_id = self._child(fold)
            for i in range(0, len(batch), METRICS_PER_BATCH):
                self.client.log_batch(run_id, metrics=batch[i:i + METRICS_PER_BATCH])
            del self._pending[fold]
        self._sent_at = time.monotonic()

    def _backfill_epochs(self, run_id: str, result: FoldResult) -> None:
        """Epochs of the fold's history that never reached us, logged now.

        That happens when a process dies between the trainer's checkpoint and its
        report of an epoch (the resumed fold starts after it), or when this tracker
        was off or not yet listed. The "epoch" metric says which epochs are here.
        """
        seen = {int(m.value): m.step for m in self.client.get_metric_history(run_id, "epoch")}
        missing = [row for row in result.history if "epoch" in row and int(row["epoch"]) not in seen]
        if not missing:
            return
        steps = history_steps(result, self.run.config)
        # Where the fold's files do not tell, the pace of the epochs this run did log.
        last = max(seen, default=0)
        pace = seen[last] / last if last > 0 else None
        batch = []
        for row in missing:
            epoch = int(row["epoch"])
            step = steps.get(epoch, round(epoch * pace) if pace is not None else epoch)
            batch += _epoch_batch(epoch, row, step)
        for i in range(0, len(batch), METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=batch[i:i + METRICS_PER_BATCH])

    def end_fold(self, result: FoldResult) -> None:
        if result.fold in self.ended:
            return  # logged already, by this attempt or by the one that finished the fold
        self._flush()
        run_id = self._child(result.fold)
        self._backfill_epochs(run_id, result)
        stamp = _now_ms()
        metrics = [Metric(k, v, stamp, 0) for k, v in as_test_metrics(result.metrics).items()]
        params = [Param("best_epoch", str(result.best_epoch))] if result.best_epoch is not None else []
        tags = []
        if ((self.run.config.get("trainer") or {}).get("repeats") or 1) > 1:
            # Repeated cross-validation: fold runs are numbered across repeats; these say which one.
            tags = [RunTag("repeat", str(result.repeat)), RunTag("fold_in_repeat", str(result.fold_in_repeat))]
        self.client.log_batch(run_id, metrics=metrics, params=params, tags=tags)

        files = dict(result.artifacts)
        files.setdefault("predictions.parquet", result.predictions_path)
        if not self.config.log_model_checkpoint:
            files = {k: v for k, v in files.items() if Path(v).suffix != ".pt"}
        for path in files.values():
            if Path(path).is_file():
                self.client.log_artifact(run_id, str(path))
        if self.config.log_plots:
            self._fold_plots(run_id, result)
        self._terminate(run_id, "FINISHED")
        self.ended.add(result.fold)
        self._save_state()

    def _fold_plots(self, run_id: str, result: FoldResult) -> None:
        from fvc_mlflow import plots  # matplotlib: a good part of a second, only when plots are on

        with tempfile.TemporaryDirectory(prefix="fvc-mlflow-") as tmp:
            out = Path(tmp)
            title = f"{self.run.model_name} fold {result.fold}"
            preds = _read_predictions(result.predictions_path)
            if preds is not None:
                labels, scores = preds
                plots.roc_plot({f"fold {result.fold}": preds}, out / "roc.png", f"ROC, {title}")
                plots.confusion_plot(_confusion_matrix(result, labels, scores), out / "confusion_matrix.png",
                                     f"confusion matrix, {title}")
            if result.history:
                plots.history_plot(result.history, out / "training_curves.png", f"training, {title}")
            if any(out.iterdir()):
                self.client.log_artifacts(run_id, tmp, artifact_path="plots")

    def end_run(self, summary: RunSummary) -> None:
        for result in summary.folds:
            # Folds finished while this tracker was off or not yet listed get their run now.
            self.end_fold(result)
        stamp = _now_ms()
        metrics = []
        for suffix, values in (("mean", summary.mean), ("std", summary.std)):
            for key, value in values.items():
                number = numeric(value)
                if number is not None:
                    metrics.append(Metric(f"{test_metric_name(key)}_{suffix}", number, stamp, 0))
        for key, (low, high) in summary.ci95.items():  # repeated cross-validation only
            for suffix, value in (("ci95_low", low), ("ci95_high", high)):
                number = numeric(value)
                if number is not None:
                    metrics.append(Metric(f"{test_metric_name(key)}_{suffix}", number, stamp, 0))
        if summary.repeats > 1:
            metrics.append(Metric("repeats", float(summary.repeats), stamp, 0))
        metrics.append(Metric("folds_done", float(len(summary.folds)), stamp, 0))
        chooser = (self.run.sweep or {}).get("metric")
        if chooser:
            # What ranks the sweep's points, beside the test metrics it never uses to choose.
            values = [v for f in summary.folds if not math.isnan(v := selected_value(f, chooser))]
            if values:
                metrics.append(Metric(f"{chooser}_mean", sum(values) / len(values), stamp, 0))
        self.client.log_batch(self.parent_id, metrics=metrics,
                              tags=[RunTag("skipped_videos", str(len(summary.skipped_videos)))])
        for path in (summary.summary_path, self.run.run_dir / "run.json"):
            if path is not None and Path(path).is_file():
                self.client.log_artifact(self.parent_id, str(path))
        if self.config.log_plots:
            from fvc_mlflow import plots

            curves = {}
            for fold in summary.folds:
                preds = _read_predictions(fold.predictions_path)
                if preds is not None:
                    curves[f"fold {fold.fold}"] = preds
            if curves:
                with tempfile.TemporaryDirectory(prefix="fvc-mlflow-") as tmp:
                    plots.roc_plot(curves, Path(tmp) / "roc_all_folds.png", f"ROC, {self.run.model_name}, all folds")
                    self.client.log_artifacts(self.parent_id, tmp, artifact_path="plots")
        self.client.set_terminated(self.parent_id, "FINISHED")
        self._settle_sweep(interrupted=False)
        self._save_state()

    def fail_run(self, run: RunInfo, error: str) -> None:
        if self.client is None or self.parent_id is None:
            return
        status = "KILLED" if error in (INTERRUPTED, KILLED) else "FAILED"
        self._flush()
        self.client.set_tag(self.parent_id, "error", error[:5000])
        for fold, run_id in self.children.items():
            if fold not in self.ended:
                self._terminate(run_id, status)
        self.client.set_terminated(self.parent_id, status)
        self._settle_sweep(interrupted=status == "KILLED")

    def log_evaluation(self, run: RunInfo, evaluation: Evaluation) -> None:
        """A run ``eval/<name>`` under the fvc run's parent run: the evaluation's protocol as params, its
        numbers as metrics, metrics.json and predictions.parquet as artifacts. Evaluating again under the
        same name replaces that run."""
        self.run = run
        self.uri = self.tracking_uri(run.run_dir.parent)
        self._prepare(self.uri, run.run_dir.parent)
        self.client = self.open(self.uri)
        experiment = self.client.get_experiment_by_name(self.config.experiment_name or run.experiment)
        if experiment is None:
            raise MlflowUnavailable(f"no experiment {run.experiment!r} in {self.uri}: was run {run.run_id[:12]} "
                                    "tracked there? (mlflow.tracking_uri of its config)")
        self.experiment_id = experiment.experiment_id
        if not self._resume():
            raise MlflowUnavailable(f"no MLflow parent run of fvc run {run.run_id[:12]} in {self.uri}")
        earlier = self.client.search_runs(
            [self.experiment_id], f"tags.`fvc.run_id` = '{run.run_id}' AND tags.`fvc.role` = 'evaluation' "
            f"AND tags.`fvc.eval_name` = '{evaluation.name}'")
        for old in earlier:
            self.client.delete_run(old.info.run_id)
        child = self.client.create_run(
            self.experiment_id, run_name=f"eval/{evaluation.name}",
            tags={**self._tags(run), MLFLOW_PARENT_RUN_ID: self.parent_id, "fvc.role": "evaluation",
                  "fvc.eval_name": evaluation.name})
        run_id = child.info.run_id
        params = [Param(k, v) for k, v in flatten({"protocol": evaluation.protocol}).items()]
        metrics = [Metric(k, v, _now_ms(), 0) for k, v in evaluation_metrics(evaluation.metrics).items()]
        for i in range(0, len(params), PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=params[i:i + PARAMS_PER_BATCH])
        for i in range(0, len(metrics), METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=metrics[i:i + METRICS_PER_BATCH])
        for name in ("metrics.json", "predictions.parquet"):
            if (Path(evaluation.eval_dir) / name).is_file():
                self.client.log_artifact(run_id, str(Path(evaluation.eval_dir) / name))
        self._terminate(run_id, "FINISHED")

    def _terminate(self, run_id: str, status: str) -> None:
        # With a server, MLflow prints two "View run" lines per terminated run; once per fvc run
        # (the parent's) is enough, and they would cut through the trainer's progress display.
        with environment(MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT="true"):
            self.client.set_terminated(run_id, status)

    def _log_text(self, run_id: str, name: str, text: str) -> None:
        with tempfile.TemporaryDirectory(prefix="fvc-mlflow-") as tmp:
            path = Path(tmp) / name
            path.write_text(text)
            self.client.log_artifact(run_id, str(path))


def evaluation_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """An evaluation's numbers under MLflow names: ``test_auc`` (... of the folds' mean score),
    ``test_auc_mean`` / ``_std`` over the fold models, ``fold_<k>.test_auc``, ``<method>.test_auc``."""
    out: dict[str, float] = {}

    def block(prefix: str, part: dict[str, Any], folds: bool) -> None:
        out.update({prefix + k: v for k, v in as_test_metrics(part.get("fold_mean_score") or {}).items()})
        if not folds:
            return
        for suffix in ("mean", "std"):
            for key, value in ((part.get("over_folds") or {}).get(suffix) or {}).items():
                if (number := numeric(value)) is not None:
                    out[f"{prefix}{test_metric_name(key)}_{suffix}"] = number
        for fold, values in (part.get("folds") or {}).items():
            out.update({f"{prefix}fold_{fold}.{k}": v for k, v in as_test_metrics(values).items()})

    block("", metrics.get("overall") or {}, True)
    for method, part in (metrics.get("per_method") or {}).items():
        block(f"{method}.", part, False)
    return out


def _epoch_batch(epoch: int, metrics: dict[str, Any], step: int) -> list[Metric]:
    """One epoch's metrics at ``step``, with the epoch itself as a metric (MLflow can plot against it)."""
    stamp = _now_ms()
    batch = [Metric("epoch", float(epoch), stamp, step)]
    batch += [Metric(k, number, stamp, step) for k, v in metrics.items()
              if k not in NOT_METRICS and (number := numeric(v)) is not None]
    return batch


def _confusion_matrix(result: FoldResult, labels: list[int], scores: list[float]) -> list[list[int]]:
    """The fold's own matrix from metrics.json (made at the trainer's threshold), else one at its threshold."""
    metrics: dict[str, Any] = dict(result.metrics)
    metrics_file = result.artifacts.get("metrics.json")
    if "confusion_matrix" not in metrics and metrics_file is not None and Path(metrics_file).is_file():
        metrics = {**json.loads(Path(metrics_file).read_text()), **metrics}
    matrix = metrics.get("confusion_matrix")
    if isinstance(matrix, list):
        return matrix
    from sklearn.metrics import confusion_matrix

    threshold = numeric(metrics.get("threshold")) or 0.5
    return confusion_matrix(labels, [int(s >= threshold) for s in scores], labels=[0, 1]).tolist()


def _read_predictions(path: Path) -> tuple[list[int], list[float]] | None:
    """Labels and scores of predictions.parquet, or None when there are none to plot."""
    if not Path(path).is_file():
        return None
    frame = pl.read_parquet(path, columns=["label", "score"]).drop_nulls()
    frame = frame.filter(pl.col("score").is_finite())
    if frame.height == 0:
        return None
    return frame["label"].cast(pl.Int64).to_list(), frame["score"].cast(pl.Float64).to_list()

