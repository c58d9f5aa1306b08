"""The DuckDB tracker writing a real results file, read back with SQL; locks held by real other processes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

pytest.importorskip("fvc_duckdb", reason="the fvc-duckdb plugin is not installed")
import duckdb  # noqa: E402
from fvc_duckdb.config import DuckdbConfig  # noqa: E402
from fvc_duckdb.store import ResultsUnavailable  # noqa: E402
from fvc_duckdb.tracker import DuckdbTracker  # noqa: E402

from fvc_core.errors import UserError  # noqa: E402
from fvc_core.tracking import FoldResult  # noqa: E402
from tests.trackers.run_outputs import full_run, make_fold, make_run, run_fold, summary_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SEED_QUERY = "SELECT fold, AVG(test_f1) AS avg_f1, STDDEV(test_f1) AS std_f1 FROM results GROUP BY fold"


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def test_a_run_fills_runs_epochs_folds_and_predictions(tmp_path):
    run = make_run(tmp_path / "out")
    tracker = DuckdbTracker(DuckdbConfig())
    tracker.start_run(run)
    results = []
    for fold in range(2):
        for epoch in range(3):
            # A trainer's extra metrics (a second learning rate, timings) get columns of their own.
            metrics = {"train_loss": 0.7 - 0.1 * epoch, "val_loss": 0.6, "val_auc": 0.5 + epoch / 10, "lr": 5e-4,
                       "lr_backbone": 5e-6, "epoch_seconds": 1.5}
            tracker.log_epoch(fold, epoch, metrics, step=10 * epoch)
        result = make_fold(run, fold)
        tracker.end_fold(result)
        results.append(result)
    summary = summary_of(run, results)
    tracker.end_run(summary)

    db = tmp_path / "out" / "results.duckdb"
    assert db.is_file()
    (row,) = query(db, "SELECT run_id, experiment, model, config_hash, status, folds, attempts, config, protocol, "
                       "started_at <= finished_at FROM runs")
    assert row[:7] == (run.run_id, "tracker_test", "naive_cnn", run.config_hash, "finished", 2, 1)
    assert json.loads(row[7])["trainer"]["epochs"] == 3
    assert json.loads(row[8])["frames_per_video"] == 8
    assert row[9] is True

    epochs = query(db, "SELECT fold, epoch, step, val_auc, lr_backbone, epoch_seconds FROM epochs ORDER BY fold, epoch")
    assert [(f, e, s) for f, e, s, *_ in epochs] == [(f, e, 10 * e) for f in range(2) for e in range(3)]
    assert epochs[2][3:] == (pytest.approx(0.7), pytest.approx(5e-6), pytest.approx(1.5))

    folds = query(db, "SELECT fold, test_accuracy, test_f1, test_auc, test_ap, test_eer, best_epoch, test_n "
                      "FROM results ORDER BY fold")
    for (_, acc, f1, auc, ap, eer, best, n), result in zip(folds, results, strict=True):
        m = result.metrics
        assert (acc, f1, auc, ap, eer) == pytest.approx(
            (m["accuracy"], m["f1_score"], m["roc_auc"], m["average_precision"], m["eer"]))
        assert best == 2 and n == 12

    # The seed's query, as written.
    seed = dict((fold, (avg, std)) for fold, avg, std in query(db, SEED_QUERY))
    assert seed[0][0] == pytest.approx(results[0].metrics["f1_score"]) and seed[0][1] is None  # one run: no spread

    (count, videos, fake) = query(db, "SELECT count(*), count(DISTINCT video_path), sum(label) FROM predictions")[0]
    assert (count, videos, fake) == (24, 24, 12)
    (mean_f1, std_auc, done) = query(db, "SELECT test_f1_mean, test_auc_std, folds_done FROM run_results")[0]
    assert mean_f1 == pytest.approx(summary.mean["f1_score"])
    assert std_auc == pytest.approx(summary.std["roc_auc"])
    assert done == 2


def documented_query(marker: str) -> str:
    """The SQL block that follows ``<!-- marker`` in docs/tracking.md."""
    text = (ROOT / "docs" / "tracking.md").read_text()
    after = text[text.index(f"<!-- {marker}"):]
    return after.split("```sql\n", 1)[1].split("```", 1)[0]


def test_the_documented_auc_query_recomputes_each_folds_auc_from_predictions(tmp_path):
    run = make_run(tmp_path)
    full_run(DuckdbTracker(DuckdbConfig()), run, checkpoint=False)
    db = tmp_path / "results.duckdb"
    from_ranks = query(db, documented_query("auc-query"))
    stored = query(db, "SELECT run_id, fold, test_auc FROM folds ORDER BY run_id, fold")
    assert [r[:2] for r in from_ranks] == [r[:2] for r in stored]
    assert [r[2] for r in from_ranks] == pytest.approx([r[2] for r in stored])


def test_nan_metrics_are_null_so_averages_skip_them(tmp_path):
    run = make_run(tmp_path)
    tracker = DuckdbTracker(DuckdbConfig(path=tmp_path / "r.duckdb"))
    tracker.start_run(run)
    for fold, auc in enumerate([0.8, math.nan, 0.6]):  # a fold with one class has no AUC
        tracker.end_fold(FoldResult(fold=fold, metrics={"roc_auc": auc, "f1_score": 0.5}, fold_dir=tmp_path,
                                    predictions_path=tmp_path / "none.parquet"))
    (avg, nulls) = query(tmp_path / "r.duckdb", "SELECT avg(test_auc), count(*) - count(test_auc) FROM folds")[0]
    assert avg == pytest.approx(0.7) and nulls == 1


def test_epochs_are_held_back_between_writes_and_written_at_the_folds_end(tmp_path):
    run = make_run(tmp_path)
    tracker = DuckdbTracker(DuckdbConfig(flush_every_s=3600))
    tracker.start_run(run)
    for epoch in range(3):
        tracker.log_epoch(0, epoch, {"train_loss": 1.0 / (epoch + 1)}, step=epoch)
    db = tmp_path / "results.duckdb"
    assert query(db, "SELECT epoch FROM epochs") == [(0,)]  # the first at once, then one write per hour
    tracker.end_fold(make_fold(run, 0, checkpoint=False))
    assert query(db, "SELECT epoch, step FROM epochs ORDER BY epoch") == [(0, 0), (1, 1), (2, 2)]


def test_a_resumed_run_rewrites_rather_than_duplicates(tmp_path):
    run = make_run(tmp_path)
    first = DuckdbTracker(DuckdbConfig())
    first.start_run(run)
    done = run_fold(first, run, 0)
    for epoch in range(2):
        first.log_epoch(1, epoch, {"val_loss": 9.0}, step=epoch)
    first.fail_run(run, "interrupted")
    db = tmp_path / "results.duckdb"
    assert query(db, "SELECT status FROM runs") == [("interrupted",)]

    resumed = make_run(tmp_path, run_id=run.run_id, resumed=True)
    second = DuckdbTracker(DuckdbConfig())
    second.start_run(resumed)
    redone = run_fold(second, resumed, 1, first_epoch=1)  # the fold resumes after its last finished epoch
    second.end_run(summary_of(resumed, [done, redone]))

    assert query(db, "SELECT status, attempts, error FROM runs") == [("finished", 2, None)]
    assert query(db, "SELECT count(*) FROM epochs") == [(6,)]
    assert query(db, "SELECT count(*) FROM folds") == [(2,)]
    assert query(db, "SELECT fold, count(*) FROM predictions GROUP BY fold ORDER BY fold") == [(0, 12), (1, 12)]


def test_folds_the_tracker_missed_are_recorded_at_the_end(tmp_path):
    """duckdb added to `trackers` for a run whose folds had finished: the summary fills the tables."""
    run = make_run(tmp_path)
    results = [make_fold(run, fold) for fold in range(2)]
    late = DuckdbTracker(DuckdbConfig())
    late.start_run(run)
    late.end_run(summary_of(run, results))
    db = tmp_path / "results.duckdb"
    assert query(db, "SELECT count(*) FROM folds") == [(2,)]
    assert query(db, "SELECT count(*), count(step) FROM epochs") == [(6, 0)]  # from history.json: no steps
    assert query(db, "SELECT count(*) FROM predictions") == [(24,)]


WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from fvc_duckdb.config import DuckdbConfig
    from fvc_duckdb.tracker import DuckdbTracker
    from tests.trackers.run_outputs import full_run, make_run

    out, db, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    run = make_run(out, model=sys.argv[4], folds=2)
    tracker = DuckdbTracker(DuckdbConfig(path=db, flush_every_s=0))  # a transaction per epoch
    while not go.exists():
        time.sleep(0.01)
    full_run(tracker, run, epochs=8, checkpoint=False)
    print(run.run_id)
""")


def test_two_processes_writing_one_results_file_lose_nothing(tmp_path):
    db = tmp_path / "shared" / "results.duckdb"
    go = tmp_path / "go"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER.format(root=str(ROOT)), str(tmp_path / f"out{i}"), str(db),
                          str(go), f"model{i}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    go.touch()  # both start writing together
    run_ids = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-2000:]
        run_ids.append(out.strip())
    assert sorted(query(db, "SELECT run_id FROM runs WHERE status = 'finished'")) == sorted((r,) for r in run_ids)
    assert query(db, "SELECT count(*) FROM epochs") == [(2 * 2 * 8,)]
    assert query(db, "SELECT count(*) FROM folds") == [(2 * 2,)]
    assert query(db, "SELECT count(*) FROM predictions") == [(2 * 2 * 12,)]
    assert query(db, "SELECT count(DISTINCT model) FROM results") == [(2,)]


HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.close()
""")


def hold_lock(db: Path, seconds: float) -> subprocess.Popen:
    """Another process with the results file open (as a duckdb shell would), until it exits."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


CONTROLLED_HOLDER = textwrap.dedent("""
    import sys, duckdb
    con = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    for line in sys.stdin:
        if line.strip() == "count":
            print(con.execute("SELECT count(*) FROM epochs").fetchone()[0], flush=True)
        elif line.strip() == "release":
            con.close()
            print("released", flush=True)
            break
""")


def test_a_write_waits_for_another_process_then_lands(tmp_path):
    run = make_run(tmp_path)
    tracker = DuckdbTracker(DuckdbConfig(lock_timeout_s=300))
    tracker.start_run(run)
    db = tmp_path / "results.duckdb"
    # Another process holds the file until the test tells it to let go (not for a fixed time).
    holder = subprocess.Popen([sys.executable, "-c", CONTROLLED_HOLDER, str(db)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)

    def ask(command: str) -> str:
        holder.stdin.write(command + "\n")
        holder.stdin.flush()
        return holder.stdout.readline().strip()

    outcome: dict[str, object] = {}

    def write() -> None:
        try:
            tracker.log_epoch(0, 0, {"train_loss": 0.5}, step=0)
            outcome["done"] = True
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            outcome["error"] = exc

    try:
        assert holder.stdout.readline().strip() == "locked"
        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        # A writer that does not wait for the lock returns (or fails) here; one that waits is still in log_epoch.
        writer.join(timeout=2)
        assert writer.is_alive() and not outcome, outcome
        assert ask("count") == "0"  # nothing got in while the lock was held
        assert ask("release") == "released"
    finally:
        holder.stdin.close()  # the holder lets go and exits at the end of its input
        holder.wait(timeout=30)
    writer.join(timeout=300)
    assert outcome == {"done": True}
    assert query(db, "SELECT fold, epoch, train_loss FROM epochs") == [(0, 0, 0.5)]


def test_a_lock_held_too_long_is_a_clear_error(tmp_path):
    run = make_run(tmp_path)
    tracker = DuckdbTracker(DuckdbConfig(lock_timeout_s=0.3))
    tracker.start_run(run)
    holder = hold_lock(tmp_path / "results.duckdb", 120)
    try:
        with pytest.raises(ResultsUnavailable, match=r"results.duckdb stayed locked by .*PID \d+.* for 0.3s"):
            tracker.log_epoch(0, 0, {"train_loss": 0.5}, step=0)
    finally:
        holder.kill()
        holder.wait()


def read_only_path(tmp_path: Path, kind: str) -> Path:
    if kind == "not_a_folder":
        (tmp_path / "results").write_text("a file where the results folder should be")
        return tmp_path / "results" / "results.duckdb"
    if os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    return folder / "results.duckdb"


@pytest.mark.parametrize("kind", ["not_a_folder", "read_only_folder"])
def test_an_unwritable_results_path_is_named(tmp_path, kind):
    from rich.console import Console

    from fvc_core.tracking.tracker_set import TrackerSet

    path = read_only_path(tmp_path, kind)
    with pytest.raises(ResultsUnavailable, match=f"results database {path}"):
        DuckdbTracker(DuckdbConfig(path=path)).check()

    console = Console(file=open(os.devnull, "w"))
    run = make_run(tmp_path / "out")
    lenient = TrackerSet([("duckdb", DuckdbTracker(DuckdbConfig(path=path)), False)], console)
    full_run(lenient, run, epochs=1)  # the run goes on without it
    assert len(lenient.warnings) == 1 and lenient.warnings[0].startswith("tracker 'duckdb' failed in start_run")
    strict = TrackerSet([("duckdb", DuckdbTracker(DuckdbConfig(path=path, fail_fast=True)), True)], console)
    with pytest.raises(UserError, match=r"tracker 'duckdb' \(fail_fast\): ResultsUnavailable: .*results.duckdb"):
        strict.check(run)
