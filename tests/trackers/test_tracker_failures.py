"""Trackers under failure: a full disk, a damaged results file, a read-only or new MLflow store, missed epochs.

Real parts only: a tmpfs filled to the last byte (root only), real DuckDB files cut short or overwritten,
a read-only bind mount (root) or file modes, two processes opening one new MLflow store at once, and
real `fvc run` / `fvc results` processes.
"""

from __future__ import annotations

import contextlib
import os
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

for plugin in ("fvc_duckdb", "fvc_mlflow", "fvc_naive_cnn", "fvc_loaders"):
    pytest.importorskip(plugin)

import duckdb  # noqa: E402
from fvc_duckdb.config import DuckdbConfig  # noqa: E402
from fvc_duckdb.tracker import DuckdbTracker  # noqa: E402
from fvc_mlflow.config import MlflowConfig  # noqa: E402
from fvc_mlflow.local_store import ensure_local_store  # noqa: E402
from fvc_mlflow.tracker import MlflowTracker  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from rich.console import Console  # noqa: E402

from fvc_core.tracking.tracker_set import TrackerSet  # noqa: E402
from tests.builders import tiny_experiment, tiny_videos  # noqa: E402
from tests.trackers.run_outputs import full_run, make_run  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
ENV.pop("MLFLOW_TRACKING_URI", None)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_env_uri(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def quiet_set(name: str, tracker, fail_fast: bool = False) -> TrackerSet:
    return TrackerSet([(name, tracker, fail_fast)], Console(file=open(os.devnull, "w")))


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, text
    assert "Traceback" not in text
    return lines[0]


# -- mounts (root only) ------------------------------------------------------------------------

def _mount(args: list[str]) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs / read-only bind mount (a real full or read-only file system)")
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip()})")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def small_tmpfs(tmp_path):
    """An 8 MiB tmpfs of its own: filled, the disk is really full for everything on it."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    _mount(["-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)])
    yield mnt
    _umount(mnt)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as out:
        chunk = b"\0" * 65536
        with contextlib.suppress(OSError):
            while True:
                out.write(chunk)
                out.flush()
    with contextlib.suppress(OSError):  # the last few bytes
        with open(filler, "ab") as out:
            while True:
                out.write(b"\0")
                out.flush()
    return filler


# -- 1. disk full ------------------------------------------------------------------------------

def test_a_full_disk_leaves_no_results_file_and_a_later_run_writes_it(small_tmpfs, tmp_path):
    db = small_tmpfs / "results.duckdb"
    filler = fill(small_tmpfs)
    run = make_run(tmp_path / "out", model="full")
    trackers = quiet_set("duckdb", DuckdbTracker(DuckdbConfig(path=db, background=False)))
    trackers.start_run(run)
    trackers.log_epoch(0, 1, {"train_loss": 0.5}, 2)
    # One line, saying the disk is full; the tracker is off after it (no second warning).
    assert len(trackers.warnings) == 1, trackers.warnings
    warning = one_line(trackers.warnings[0])
    assert "no space left on the device" in warning and str(db) in warning
    # Nothing that later runs could not open: no file at all, and no half-built one of ours.
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler"]

    # With fail_fast the run stops before training, in one line.
    from fvc_core.errors import UserError

    strict = TrackerSet([("duckdb", DuckdbTracker(DuckdbConfig(path=db, fail_fast=True)), True)])
    with pytest.raises(UserError, match="no space left on the device"):
        strict.check(run)
    assert sorted(p.name for p in small_tmpfs.iterdir()) == ["filler"]

    # Space freed: the next run writes normally.
    filler.unlink()
    later = make_run(tmp_path / "out", model="later")
    full_run(DuckdbTracker(DuckdbConfig(path=db, background=False, flush_every_s=0)), later)
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT status FROM runs WHERE run_id = ?", [later.run_id]).fetchall() == [("finished",)]
        assert con.execute("SELECT count(*) FROM folds WHERE run_id = ?", [later.run_id]).fetchone()[0] == 2


def test_a_disk_that_fills_during_a_run_is_one_line_and_the_file_stays_readable(small_tmpfs, tmp_path):
    db = small_tmpfs / "results.duckdb"
    run = make_run(tmp_path / "out", model="midway")
    tracker = DuckdbTracker(DuckdbConfig(path=db, background=False, flush_every_s=0))
    trackers = quiet_set("duckdb", tracker)
    trackers.start_run(run)
    assert trackers.warnings == []
    filler = fill(small_tmpfs)
    for epoch in range(1, 200):  # a few hundred rows overflow what the full disk has left
        trackers.log_epoch(0, epoch, {"train_loss": 1.0 / epoch, "val_loss": random.random()}, 2 * epoch)
        if trackers.warnings:
            break
    assert len(trackers.warnings) == 1
    assert "no space left on the device" in one_line(trackers.warnings[0])
    filler.unlink()
    with duckdb.connect(str(db), read_only=True) as con:  # what was committed is still there
        assert con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run.run_id]).fetchone()[0] == 1


def test_an_empty_results_file_is_named_with_the_way_out(tmp_path):
    db = tmp_path / "results.duckdb"
    db.write_bytes(b"")  # what a full disk left before fvc made the file whole
    trackers = quiet_set("duckdb", DuckdbTracker(DuckdbConfig(path=db, background=False)))
    trackers.start_run(make_run(tmp_path / "out"))
    warning = one_line(trackers.warnings[0])
    assert "empty file" in warning and "delete it" in warning and str(db) in warning
    assert db.read_bytes() == b""  # not ours to replace


# -- 2. `fvc results` on a damaged file --------------------------------------------------------

@pytest.fixture(scope="module")
def real_db(tmp_path_factory) -> bytes:
    """The bytes of a results file that three runs wrote."""
    root = tmp_path_factory.mktemp("real_db")
    path = root / "results.duckdb"
    tracker = DuckdbTracker(DuckdbConfig(path=path, background=False))
    for index in range(3):
        full_run(tracker, make_run(root / "out", model=f"m{index}"), epochs=40)
    return path.read_bytes()


def _damage(db: Path, how: str) -> None:
    data = bytearray(db.read_bytes())
    rng = random.Random(how)
    if how == "random bytes":
        db.write_bytes(bytes(rng.getrandbits(8) for _ in range(20000)))
    elif how == "text file":
        db.write_text("run_id,fold,test_auc\nabc,0,0.9\n")
    elif how.startswith("cut at "):
        fraction = float(how.removeprefix("cut at "))
        db.write_bytes(bytes(data[:int(len(data) * fraction)]))
    elif how.startswith("overwritten at "):
        offset = int(how.removeprefix("overwritten at "))
        data[offset:offset + 3000] = bytes(rng.getrandbits(8) for _ in range(3000))
        db.write_bytes(bytes(data))


DAMAGES = ["random bytes", "text file", "cut at 0.002", "cut at 0.05", "cut at 0.6", "overwritten at 4096",
           "overwritten at 12288"]


@pytest.mark.parametrize("how", DAMAGES)
def test_fvc_results_on_a_damaged_file_is_one_line_naming_it(tmp_path, real_db, how):
    db = tmp_path / "results.duckdb"
    db.write_bytes(real_db)
    _damage(db, how)
    for extra in ([], ["--runs"], ["SELECT sum(train_loss), sum(score) FROM epochs, predictions"]):
        done = subprocess.run([*FVC, "results", "--db", str(db), *extra], capture_output=True, text=True,
                              env=ENV, cwd=tmp_path)
        assert done.returncode == 2, (how, extra, done.stdout, done.stderr)
        line = one_line(done.stdout + done.stderr)
        assert str(db) in line and ("damaged" in line or "not a DuckDB file" in line), line


# -- 3. epochs caught up from files keep their optimiser step ----------------------------------

@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("steps")
    # 4 training videos a fold, batch 1, 2 batches a step: 2 optimiser steps an epoch.
    return tiny_experiment(root, tiny_videos(root / "videos"), experiment="steps", output_dir=str(root / "live"),
                           trainer={"epochs": 3, "early_stopping": {"patience": None}},
                           trackers=["console", "mlflow", "duckdb"], mlflow={"log_plots": False},
                           duckdb={"flush_every_s": 0})


def fvc_run(config: Path, *overrides: str) -> subprocess.CompletedProcess:
    done = subprocess.run([*FVC, "run", str(config), *overrides], capture_output=True, text=True, env=ENV,
                          cwd=config.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def tracked_steps(output_dir: Path) -> tuple[set, set]:
    """(fold, epoch, step) of every epoch, as the DuckDB file and as the MLflow store hold them."""
    with duckdb.connect(str(output_dir / "results.duckdb"), read_only=True) as con:
        in_duckdb = set(con.execute("SELECT fold, epoch, step FROM epochs").fetchall())
    client = MlflowClient(f"sqlite:///{output_dir / 'mlflow.db'}")
    in_mlflow = set()
    for run in client.search_runs([e.experiment_id for e in client.search_experiments()]):
        if run.data.tags.get("fvc.role") == "fold":
            for metric in client.get_metric_history(run.info.run_id, "epoch"):
                in_mlflow.add((int(run.data.tags["fold"]), int(metric.value), metric.step))
    return in_duckdb, in_mlflow


def test_epochs_caught_up_from_files_keep_their_optimiser_step(experiment):
    root = experiment.parent
    # The truth: both trackers on while the folds train.
    fvc_run(experiment)
    live_duckdb, live_mlflow = tracked_steps(root / "live")
    assert live_duckdb == live_mlflow == {(f, e, 2 * e) for f in (0, 1) for e in (1, 2, 3)}

    # Same run with no trackers, then again with them: every epoch comes from history.json.
    fvc_run(experiment, f"output_dir={root / 'late'}", "trackers=[console]")
    fvc_run(experiment, f"output_dir={root / 'late'}")
    late_duckdb, late_mlflow = tracked_steps(root / "late")
    assert late_duckdb == live_duckdb
    assert late_mlflow == live_mlflow


# -- 4. a read-only MLflow store ---------------------------------------------------------------

def _store(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "mlflow.db"
    ensure_local_store(db, folder / "mlartifacts")
    MlflowClient(f"sqlite:///{db}").create_experiment("ro")
    return db


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder holding an MLflow store, read-only: a read-only bind mount as root, file modes otherwise."""
    src = tmp_path / "store"
    db = _store(src)
    if os.geteuid() == 0:
        view = tmp_path / "ro"
        view.mkdir()
        _mount(["--bind", str(src), str(view)])
        done = subprocess.run(["mount", "-o", "remount,ro,bind", str(view)], capture_output=True, text=True)
        if done.returncode != 0:
            _umount(view)
            pytest.skip(f"cannot remount read-only here ({done.stderr.strip()})")
        yield view
        _umount(view)
    else:
        db.chmod(0o444)
        src.chmod(0o555)
        yield src
        src.chmod(0o755)


@pytest.mark.parametrize("name", ["mlflow.db", "new.db"])
def test_a_read_only_mlflow_store_is_one_warning_without_retries(read_only_folder, tmp_path, name):
    uri = f"sqlite:///{read_only_folder / name}"
    run = make_run(tmp_path / "out", model="ro")
    trackers = quiet_set("mlflow", MlflowTracker(MlflowConfig(tracking_uri=uri, log_plots=False)))
    trackers.start_run(run)
    trackers.log_epoch(0, 1, {"train_loss": 0.5}, 2)
    assert len(trackers.warnings) == 1
    warning = one_line(trackers.warnings[0])
    # Said by fvc's own probe, before MLflow's ten retries (about 100 s) could start.
    assert "cannot write to the MLflow store" in warning or "cannot create the MLflow store" in warning, warning
    assert str(read_only_folder / name) in warning


def test_a_read_only_mlflow_store_with_fail_fast_stops_the_run_in_one_line(read_only_folder, experiment, tmp_path):
    uri = f"sqlite:///{read_only_folder / 'mlflow.db'}"
    done = subprocess.run(
        [*FVC, "run", str(experiment), f"output_dir={tmp_path / 'out'}", "trackers=[console,mlflow]",
         f"mlflow.tracking_uri={uri}", "mlflow.fail_fast=true"],
        capture_output=True, text=True, env=ENV, cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    line = one_line(done.stderr)
    assert "'mlflow'" in line and "cannot write to the MLflow store" in line and "read-only" in line
    assert not (tmp_path / "out" / "naive_cnn" / "fold_0" / "history.json").exists()  # stopped before training


# -- 5. two runs starting at once on a new MLflow store ----------------------------------------

CHILD = """
import sys, time
from pathlib import Path
from fvc_mlflow.config import MlflowConfig
from fvc_mlflow.tracker import MlflowTracker
from tests.trackers.run_outputs import full_run, make_run

uri, out, model, barrier = sys.argv[1], Path(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
run = make_run(out, model=model, run_id=model)
tracker = MlflowTracker(MlflowConfig(tracking_uri=uri, log_plots=False))
(barrier.parent / ("ready-" + model)).touch()
while not barrier.exists():
    time.sleep(0.001)
full_run(tracker, run)
"""


def test_two_runs_starting_at_once_on_a_new_store_are_both_tracked(tmp_path):
    barrier = tmp_path / "go"
    stores = [tmp_path / f"store{i}" / "mlflow.db" for i in range(2)]  # two races, for a better chance to collide
    children = []
    for i, db in enumerate(stores):
        for who in ("a", "b"):
            model = f"{who}{i}_{uuid.uuid4().hex[:6]}"
            children.append((db, model, subprocess.Popen(
                [sys.executable, "-c", CHILD, f"sqlite:///{db}", str(tmp_path / "out"), model, str(barrier)],
                cwd=REPO, env={**ENV, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                text=True)))
    deadline = time.monotonic() + 300
    while not all((tmp_path / f"ready-{model}").exists() for _, model, _ in children):
        assert time.monotonic() < deadline and all(p.poll() is None for *_, p in children)
        time.sleep(0.05)
    barrier.touch()  # every process is past its imports: they open the new stores together
    for _, _, process in children:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
    for db, model, _ in children:
        client = MlflowClient(f"sqlite:///{db}")
        found = client.search_runs([e.experiment_id for e in client.search_experiments()],
                                   f"tags.`fvc.run_id` = '{model}'")
        roles = sorted(r.data.tags.get("fvc.role") for r in found)
        assert roles == ["fold", "fold", "parent"], (model, roles)
        assert all(r.info.status == "FINISHED" for r in found)


# -- 6. an unreachable tracking server ---------------------------------------------------------

def test_an_unreachable_server_is_one_warning_and_the_run_goes_on(experiment, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # released: nothing listens there
    done = fvc_run(experiment, f"output_dir={tmp_path / 'out'}", "trackers=[console,mlflow]",
                   f"mlflow.tracking_uri=http://127.0.0.1:{port}")
    warnings = [line for line in (done.stdout + done.stderr).splitlines() if "warning" in line.lower()]
    assert len(warnings) == 1, done.stdout + done.stderr
    assert "'mlflow'" in warnings[0] and "connection refused" in warnings[0]
    assert "Traceback" not in done.stdout + done.stderr


def test_an_error_text_that_looks_like_markup_is_printed_as_it_is(tmp_path):
    # gloo's errors start with their source file in brackets ("[/__w/pytorch/.../pair.cc:553] Connection
    # closed by peer"): rich read it as a closing tag, raised, and the run's one line became a traceback.
    import io

    from fvc_core.builtin.console import ConsoleConfig, ConsoleTracker

    text = "[/__w/pytorch/pytorch/third_party/gloo/gloo/transport/tcp/pair.cc:553] Connection closed by peer"
    out = io.StringIO()
    console = ConsoleTracker(ConsoleConfig())
    console.console = Console(file=out, width=300)
    console.fail_run(make_run(tmp_path), text)
    TrackerSet([], Console(file=out, width=300)).warn(text)
    TrackerSet([], Console(file=out, width=300)).note(text)
    assert out.getvalue().count(text) == 3, out.getvalue()
