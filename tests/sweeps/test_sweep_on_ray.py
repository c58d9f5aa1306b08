"""A sweep on the Ray test cluster (tests/conftest.py): its points side by side, their folds sharing
``max_concurrent``; each point's numbers those of the same point run alone in this process; a
SIGTERM while they run stops every point, and the same command resumes them."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from mlflow import MlflowClient  # noqa: E402

from tests.sweeps.test_sweep_runs import ENV, FVC, experiment  # noqa: E402

GRID = ["trainer.lr=1.0e-3,5.0e-4,2.0e-3"]
POINTS = ["lr=0.001", "lr=0.0005", "lr=0.002"]
# Four folds fit the test cluster's two CPUs at half a CPU each; three may run.
RAY = ["executor.name=ray", "executor.num_cpus=0.5", "executor.max_concurrent=3"]


def on_ray(cluster) -> dict[str, str]:
    # The driver dials the test cluster's loopback address (see tests/conftest.py).
    return {**ENV, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_ADDRESS": cluster.address}


def fold_times(folder: Path) -> list[tuple[str, int, int]]:
    """(point, start, end) of every fold: its lock file is made as its task starts on the cluster,
    its metrics.json written as it ends."""
    out = []
    for lock in folder.glob("*/.fold-locks/repeat_0_fold_*.lock"):
        metrics = lock.parent.parent / lock.name[len("repeat_0_"):-len(".lock")] / "metrics.json"
        out.append((lock.parent.parent.name, lock.stat().st_mtime_ns, metrics.stat().st_mtime_ns))
    return out


def most_at_once(times: list[tuple[str, int, int]]) -> int:
    edges = sorted([(start, 1) for _, start, _ in times] + [(end, -1) for _, _, end in times])
    now = most = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


def test_points_run_side_by_side_within_max_concurrent_with_the_numbers_of_a_local_sweep(tmp_path, ray_cluster):
    config = experiment(tmp_path, ["console", "duckdb", "mlflow"])
    local = subprocess.run([*FVC, "sweep", str(config), *GRID, "--name", "alone"],
                           env=ENV, capture_output=True, text=True, timeout=600)
    assert local.returncode == 0, local.stdout + local.stderr
    done = subprocess.run([*FVC, "sweep", str(config), *GRID, *RAY, "--name", "together"], env=on_ray(ray_cluster),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "points side by side: up to 3 at once, their folds sharing 3 slots" in done.stdout
    # Every line of a point names it: two points' epochs are told apart in the log.
    assert any(line.startswith("[lr=0.0005] fold 1 epoch 1:") for line in done.stdout.splitlines()), done.stdout

    folder = tmp_path / "out" / "together"
    times = fold_times(folder)
    assert len(times) == 6
    assert most_at_once(times) <= 3
    # Folds of two points overlapped: the sweep did not wait for a point to end before the next.
    assert any(a[0] != b[0] and a[1] < b[2] and b[1] < a[2] for a in times for b in times), times

    for point in POINTS:
        for fold in (0, 1):
            mine = json.loads((folder / point / f"fold_{fold}" / "metrics.json").read_text())
            alone = json.loads((tmp_path / "out" / "alone" / point / f"fold_{fold}" / "metrics.json").read_text())
            assert mine == alone, (point, fold)

    # MLflow: one sweep run (its points started at once must not each make one), finished once all were.
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    sweeps = [r for r in runs if r.data.tags.get("fvc.role") == "sweep"]
    assert len(sweeps) == 1 and sweeps[0].info.status == "FINISHED"
    points = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == sweeps[0].info.run_id]
    assert sorted(r.info.run_name for r in points) == sorted(POINTS)
    assert {r.info.status for r in points} == {"FINISHED"}
    for point in points:
        folds = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == point.info.run_id]
        assert sorted(r.info.run_name for r in folds) == ["fold_0", "fold_1"]


def test_a_sigterm_while_points_run_side_by_side_stops_them_all_and_the_same_command_resumes(tmp_path,
                                                                                            ray_cluster):
    config = experiment(tmp_path, ["console", "mlflow"])
    command = [*FVC, "sweep", str(config), *GRID, *RAY, "trainer.epochs=3", "--name", "stopped"]
    folder = tmp_path / "out" / "stopped"
    proc = subprocess.Popen(command, env=on_ray(ray_cluster), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 300
        # Once one fold has finished and two points are under way: folds end up finished, cut, and never started.
        while time.monotonic() < deadline and proc.poll() is None:
            started = {p.name for p in folder.glob("*") if (p / ".fold-locks").is_dir()}
            if len(started) >= 2 and any(folder.glob("*/fold_*/metrics.json")):
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the sweep ended before it could be stopped"
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, out
    assert out.strip().splitlines()[-1].startswith("terminated (SIGTERM)"), out
    states = {p.name: json.loads((p / "run.json").read_text())["status"] for p in folder.glob("*/") if
              (p / "run.json").exists()}
    assert len(states) >= 2 and "running" not in states.values() and "interrupted" in states.values(), states
    kept = {path: path.stat().st_mtime_ns for path in folder.glob("*/fold_*/metrics.json")}
    assert kept
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    [sweep] = client.search_runs([client.get_experiment_by_name("tiny").experiment_id],
                                 "tags.`fvc.role` = 'sweep'")
    assert sweep.info.status == "KILLED"

    again = subprocess.run(command, env=on_ray(ray_cluster), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert {p.name: json.loads((p / "run.json").read_text())["status"] for p in folder.glob("*/")
            if (p / "run.json").exists()} == dict.fromkeys(POINTS, "finished")
    assert {path: path.stat().st_mtime_ns for path in kept} == kept  # finished folds were not trained again
    [sweep] = client.search_runs([client.get_experiment_by_name("tiny").experiment_id],
                                 "tags.`fvc.role` = 'sweep'")
    assert sweep.info.status == "FINISHED"


def test_a_diverging_point_side_by_side_is_its_own_failure_and_the_others_finish(tmp_path, ray_cluster):
    config = experiment(tmp_path, ["console"])
    done = subprocess.run([*FVC, "sweep", str(config), "trainer.lr=1.0e+8,1.0e-3", "trainer.epochs=2", *RAY,
                           "--name", "diverge"],
                          env=on_ray(ray_cluster), capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "points side by side" in done.stdout and "1 point(s) failed: lr=1e+08" in done.stdout, done.stdout
    # (Which error stops the point, the trainer's own non-finite-loss check or a NaN reaching the metrics
    # first, depends on which fold diverges first: either is the point's own failure.)
    folder = tmp_path / "out" / "diverge"
    assert json.loads((folder / "lr=0.001" / "run.json").read_text())["status"] == "finished"
    assert json.loads((folder / "lr=1e+08" / "run.json").read_text())["status"] == "failed"
