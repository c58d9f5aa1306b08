"""The DuckDB tracker: every event of a run becomes rows of the results database (see store.py)."""

from __future__ import annotations

import math
import time
from pathlib import Path

from fvc_core.contract import INTERRUPTED, KILLED, Evaluation, FoldResult, RunInfo, RunSummary, Tracker, history_steps
from fvc_duckdb import store
from fvc_duckdb.config import DEFAULT_FILE, DuckdbConfig


def _repeats(run: RunInfo) -> int:
    """trainer.repeats of the run: its folds are numbered 0 .. repeats * k - 1 and all count as folds."""
    trainer = run.config.get("trainer") if isinstance(run.config, dict) else None
    repeats = trainer.get("repeats") if isinstance(trainer, dict) else None
    return repeats if isinstance(repeats, int) and repeats > 1 else 1


class DuckdbTracker(Tracker):
    name = "duckdb"

    def __init__(self, config: DuckdbConfig):
        self.config = config
        self.path: Path | None = None
        self.run: RunInfo | None = None
        self._pending: list[tuple[int, int, int, dict[str, float]]] = []  # epochs not written yet
        self._written_at = -math.inf

    def results_path(self, output_dir: Path | None) -> Path | None:
        """The configured file, else <output_dir>/results.duckdb (None while the output folder is unknown)."""
        if self.config.path is not None:
            return Path(self.config.path)
        return Path(output_dir) / DEFAULT_FILE if output_dir is not None else None

    def _transaction(self):
        return store.transaction(self.path, self.config.lock_timeout_s)

    def _use(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise store.ResultsUnavailable(f"cannot create the folder of results database {path}: "
                                           f"{exc.strerror or exc}") from None
        self.path = path

    def check(self, run: RunInfo | None = None) -> None:
        """Open the results file for writing (creating it and its tables); before a run, only a set path."""
        path = self.results_path(run.run_dir.parent if run else None)
        if path is not None:
            self._use(path)
            with self._transaction() as con:
                store.ensure_schema(con)

    def start_run(self, run: RunInfo) -> None:
        self.run = run
        self._use(self.results_path(run.run_dir.parent))
        now = store.utc_now()
        with self._transaction() as con:
            store.ensure_schema(con)
            con.execute(
                """
                INSERT INTO runs (run_id, experiment, model, config, config_hash, protocol, versions, folds,
                                  run_dir, status, error, attempts, started_at, finished_at, updated_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'running', NULL, 1, ?, NULL, ?)
                ON CONFLICT (run_id) DO UPDATE SET
                    status = 'running', error = NULL, finished_at = NULL, updated_at = excluded.updated_at,
                    attempts = runs.attempts + 1, config = excluded.config, protocol = excluded.protocol,
                    versions = excluded.versions, run_dir = excluded.run_dir,
                    config_hash = excluded.config_hash
                """,
                [run.run_id, run.experiment, run.model_name, store.to_json(run.config), run.config_hash,
                 store.to_json(run.protocol), store.to_json(run.versions), run.folds * _repeats(run),
                 str(Path(run.run_dir).resolve()), now, now],
            )
            if run.sweep:
                store.write_sweep_point(con, run.run_id, run.sweep)

    def log_epoch(self, fold: int, epoch: int, metrics: dict[str, float], step: int) -> None:
        self._pending.append((fold, epoch, step, dict(metrics)))
        if time.monotonic() - self._written_at >= self.config.flush_every_s:
            with self._transaction() as con:
                self._write_pending(con)

    def _write_pending(self, con) -> None:
        for fold, epoch, step, metrics in self._pending:
            store.write_epoch(con, self.run.run_id, fold, epoch, step, metrics)
        self._pending.clear()
        self._written_at = time.monotonic()

    def end_fold(self, result: FoldResult) -> None:
        with self._transaction() as con:
            self._write_pending(con)
            self._record_fold(con, result)

    def _record_fold(self, con, result: FoldResult) -> None:
        repeated = _repeats(self.run) > 1
        store.write_fold(con, self.run.run_id, result.fold, result.metrics, result.best_epoch,
                         Path(result.fold_dir).resolve(), result.predictions_path,
                         result.repeat if repeated else None)
        # Epochs the tracker did not see (it was added, or off, while the fold trained) come
        # from the fold's history; epochs already logged keep their row and step.
        steps = history_steps(result, self.run.config)
        for index, row in enumerate(result.history):
            epoch = int(row.get("epoch", index))
            store.write_epoch(con, self.run.run_id, result.fold, epoch, steps.get(epoch), row, update=False)

    def end_run(self, summary: RunSummary) -> None:
        with self._transaction() as con:
            self._write_pending(con)
            # Folds finished by an earlier attempt are reported only here: record what is missing.
            for result in summary.folds:
                if not store.has_fold(con, self.run.run_id, result.fold):
                    self._record_fold(con, result)
            if summary.repeats > 1:
                store.write_run_summary(con, self.run.run_id, summary.repeats, len(summary.folds), summary.mean,
                                        summary.std, summary.ci95)
            con.execute(
                "UPDATE runs SET status = 'finished', error = NULL, finished_at = ?, updated_at = ? WHERE run_id = ?",
                [store.utc_now(), store.utc_now(), self.run.run_id],
            )

    def fail_run(self, run: RunInfo, error: str) -> None:
        if self.path is None:
            return
        status = error if error in (INTERRUPTED, KILLED) else "failed"
        with self._transaction() as con:
            self._write_pending(con)
            con.execute("UPDATE runs SET status = ?, error = ?, updated_at = ? WHERE run_id = ?",
                        [status, error, store.utc_now(), run.run_id])

    def log_evaluation(self, run: RunInfo, evaluation: Evaluation) -> None:
        """Rows of the ``evaluations`` table (overall and per method; the folds' mean and each fold)."""
        self._use(self.results_path(run.run_dir.parent))
        with self._transaction() as con:
            store.ensure_schema(con)
            store.write_evaluation(con, run.run_id, evaluation.name, evaluation.metrics, evaluation.protocol,
                                   Path(evaluation.eval_dir).resolve())
