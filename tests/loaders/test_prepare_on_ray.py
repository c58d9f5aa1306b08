"""``fvc prepare --executor ray``: the videos as Ray tasks on the test cluster (tests/conftest.py, two nodes
bound to 127.0.0.1), the real ``fvc`` command on real H.264 files.

The copies, face boxes, crops and table are byte for byte those of a local run; the fvc process itself
decodes nothing (tests/driver_reads.py marks a read there); a prepare killed mid-run (SIGKILL, or
SIGTERM: one line, 143) leaves only whole copies and the same command finishes just the rest; a wrong
executor, key or address is one line before anything is written.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

from tests.faces.test_faces import write_table
from tests.faces.videos import face_video, moving
from tests.loaders.videos import make_video

pytest.importorskip("ray")
pytest.importorskip("fvc_faces")

FVC = [sys.executable, "-m", "fvc_core.cli"]
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
KILLED_VIDEOS = 12


def on_ray(cluster) -> dict[str, str]:
    # The driver dials the test cluster's loopback address (see tests/conftest.py).
    return {**ENV, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def owned_files(out: Path) -> dict[str, bytes]:
    """Every file fvc wrote under ``out``, by path, but the ownership marker (its time and pid differ)."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name != ".fvc-owned"}


@pytest.fixture(scope="module")
def faces_table(tmp_path_factory) -> Path:
    """Four face videos of 16 frames (enough for tests/gated_fvc.py to park a read after 12), each its
    own face path."""
    data = tmp_path_factory.mktemp("ray_faces") / "data"
    for k in range(4):
        face_video(data / "real" / f"v{k}.mp4", moving(16, (100 + 10 * k, 110, 100), (200, 120 + 5 * k, 150)))
    return write_table(data, [(f"real/v{k}.mp4", "real", f"v{k}") for k in range(4)])


@pytest.mark.parametrize("faces", [False, True], ids=["copies", "faces"])
def test_on_ray_the_files_and_table_are_those_of_a_local_run(faces_table, tmp_path, ray_cluster, faces):
    extra = ["--faces"] if faces else []
    local = subprocess.run([*FVC, "prepare", str(faces_table), "-o", str(tmp_path / "local"), "--size", "64",
                            "-j", "2", *extra], env=ENV, capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stdout + local.stderr

    # tests/driver_reads.py marks a video opened in the fvc process itself: -j 1 would read there, were the
    # videos not Ray's. The executor comes from an experiment's section.
    mark = tmp_path / "read_in_the_driver"
    experiment = tmp_path / "experiment.yaml"
    experiment.write_text(f"executor:\n  name: ray\n  address: '{ray_cluster.address}'\n")
    on = subprocess.run([sys.executable, "-m", "tests.driver_reads", str(mark), "prepare", str(faces_table),
                         "-o", str(tmp_path / "ray"), "--size", "64", "-j", "1", "--config", str(experiment), *extra],
                        cwd=ROOT, env=on_ray(ray_cluster), capture_output=True, text=True, timeout=300)
    stdout, stderr = on.stdout, on.stderr
    assert not mark.exists(), "fvc prepare --executor ray decoded a video in its own process"
    assert on.returncode == 0, stdout + stderr
    assert "4 already done" not in stdout and ("4 face clips (4 written" if faces else "4 videos scaled") in stdout

    mine, theirs = owned_files(tmp_path / "ray"), owned_files(tmp_path / "local")
    assert sorted(mine) == sorted(theirs)
    assert len([n for n in mine if n.endswith(".mp4")]) == 4
    if faces:
        assert len([n for n in mine if n.startswith(".faces/")]) == 4
    for name in theirs:
        assert mine[name] == theirs[name], name
    table = "scaled_metadata.parquet"
    assert pl.read_parquet(tmp_path / "ray" / table).equals(pl.read_parquet(tmp_path / "local" / table))


def tasks_running() -> list[str]:
    """The Ray workers running a task of ``RayExecutor.map`` now (Ray titles them ``ray::fvc item N``)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if title.startswith("ray::fvc item"):
            found.append(title.strip())
    return found


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("ray_killed") / "data"
    data.mkdir()
    names = [f"v{i:02d}.mp4" for i in range(KILLED_VIDEOS)]
    for name in names:
        make_video(data / name, frames=48, width=96, height=64)
    path = data / "metadata.parquet"
    pl.DataFrame({"video_path": names, "label": ["real", "fake"] * (KILLED_VIDEOS // 2)}).write_parquet(path)
    return path


@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["sigkill", "sigterm"])
def test_a_prepare_killed_mid_run_on_ray_reruns_only_the_rest(many, tmp_path, ray_cluster, signum):
    out = tmp_path / "out"
    command = [*FVC, "prepare", str(many), "-o", str(out), "--size", "32", "--executor", "ray",
               "--address", ray_cluster.address, "-j", "1"]
    run = subprocess.Popen(command, env=on_ray(ray_cluster), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not any(out.glob("v*.mp4")):
        assert run.poll() is None, f"prepare ended before its first copy: {run.communicate()}"
        assert time.monotonic() < deadline, "prepare never wrote a copy"
        time.sleep(0.01)
    run.send_signal(signum)
    stdout, stderr = run.communicate(timeout=120)
    if signum == signal.SIGTERM:
        assert run.returncode == 143, stdout + stderr
        assert "Traceback" not in stderr, stderr
        # Ray's own log lines (its INFO on connecting, a killed worker's notice) may come around fvc's line.
        assert ("terminated (SIGTERM): progress so far is saved; run the same command again to resume"
                in stderr.splitlines()), stderr
    else:
        assert run.returncode == -signal.SIGKILL
    assert not (out / "scaled_metadata.parquet").exists()
    # The cluster outlives the command, its tasks do not: Ray ends a job's workers when its driver goes.
    deadline = time.monotonic() + 60
    while left := tasks_running():
        assert time.monotonic() < deadline, f"tasks of the stopped fvc prepare still run: {left}"
        time.sleep(0.1)
    copies = {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.glob("v*.mp4")}
    assert 1 <= len(copies) < KILLED_VIDEOS, "the kill came after the last copy: nothing left to resume"
    assert not list(out.glob(".*tmp*"))  # the driver writes whole files only: nothing half-written

    again = subprocess.run(command, env=on_ray(ray_cluster), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{KILLED_VIDEOS - len(copies)} videos scaled, {len(copies)} already done, 0 bad" in again.stdout
    for name, stamp in copies.items():  # the finished copies were kept, not made again
        path = out / name
        assert (path.stat().st_ino, path.stat().st_mtime_ns) == stamp, name
    local = subprocess.run([*FVC, "prepare", str(many), "-o", str(tmp_path / "local"), "--size", "32", "-j", "2"],
                           env=ENV, capture_output=True, text=True, timeout=300)
    assert local.returncode == 0, local.stdout + local.stderr
    assert owned_files(out) == owned_files(tmp_path / "local")


@pytest.mark.parametrize(("args", "yaml", "message"), [
    (["--executor", "rya"], None, "--executor: unknown executor 'rya' (did you mean 'ray'?)"),
    (["--address", "127.0.0.1:6379"], None, "--address: the executor 'local' takes no address"),
    (["--executor", "ray", "--address", "nonsense"], None,
     "executor.address: 'nonsense' is not a Ray address (host:port, auto, ray://host:port or local)"),
    (["--executor", "ray", "--address", "127.0.0.1:1"], None, "executor.address: no Ray cluster answers at "),
    ([], "executor:\n  name: ray\n  num_cpu: 1\n",
     "{yaml}: executor.num_cpu: unknown key (did you mean 'num_cpus' or 'num_gpus'?)"),
    ([], "executor:\n  name: rey\n", "{yaml}: executor.name: unknown executor 'rey' (did you mean 'ray'?)"),
    ([], "executor: ray\n", "{yaml}: executor: expected a mapping with a name (name: ray), got str"),
], ids=["name", "address-for-local", "not-an-address", "nobody-answers", "yaml-key", "yaml-name", "yaml-shape"])
def test_a_wrong_executor_key_or_address_is_one_line_and_nothing_is_written(faces_table, tmp_path, args, yaml,
                                                                             message):
    if yaml is not None:
        (tmp_path / "exp.yaml").write_text(yaml)
        args = [*args, "--config", str(tmp_path / "exp.yaml")]
    out = tmp_path / "out"
    done = subprocess.run([*FVC, "prepare", str(faces_table), "-o", str(out), *args], env={
        **ENV, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: " + message.format(yaml=tmp_path / "exp.yaml")), lines
    assert not out.exists()


def test_a_worker_makes_the_file_in_a_folder_of_its_own_and_removes_those_of_killed_workers(many, tmp_path,
                                                                                          monkeypatch):
    """What a Ray task runs (``_made_here``), in this process: the copy's bytes come back and nothing is
    left in OUT or in the temporary folder; a folder left by a worker killed mid-task (its pid gone) is
    removed, one of a live worker kept."""
    import tempfile

    from fvc_loaders.parallel import WORKER_TMP, _made_here
    from fvc_loaders.prepare import Encoding, scale_video

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / "tmp" / f"{WORKER_TMP}{int(gone.stdout)}-abc"
    live = tmp_path / "tmp" / f"{WORKER_TMP}{os.getpid()}-def"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "v00.mp4").write_bytes(b"half")
    target = tmp_path / "out" / "v00.mp4"

    (reason, frames), data = _made_here((scale_video, Encoding(32), 1), (str(many.parent / "v00.mp4"), str(target)))

    assert (reason, frames) == (None, 48)
    assert data is not None and data[4:8] == b"ftyp"
    assert not target.exists() and not target.parent.exists()  # the driver writes it, not the task
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == [live.name]


def test_ctrl_c_in_the_terminal_stops_prepare_and_the_ray_instance_it_started_in_one_line(tmp_path):
    """Ctrl-C reaches the whole process group: fvc, and the Ray instance and workers it started here. One
    line and 130 (Ray's driver used to abort now and then, exit 1, when the workers were interrupted too),
    every process of the group gone, and no temporary folder of a killed task left."""
    from tests.core.test_signals import group_of, wait_until_gone

    # Videos long enough (about a second each) that the other task is mid-video when the first is done.
    (tmp_path / "data").mkdir()
    names = [f"v{i}.mp4" for i in range(6)]
    for name in names:
        make_video(tmp_path / "data" / name, frames=150, width=160, height=120)
    many = tmp_path / "data" / "metadata.parquet"
    pl.DataFrame({"video_path": names, "label": ["real", "fake"] * 3}).write_parquet(many)
    out, tmp = tmp_path / "out", tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in ENV.items() if k != "RAY_ADDRESS"}
    # The tasks' temporary folders here; Ray's own session stays in /tmp (its socket paths are short).
    env |= {"TMPDIR": str(tmp), "RAY_TMPDIR": "/tmp", "RAY_USAGE_STATS_ENABLED": "0"}
    run = subprocess.Popen([*FVC, "prepare", str(many), "-o", str(out), "--size", "32", "--executor", "ray"],
                           env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    while not any(out.glob("v*.mp4")):
        assert run.poll() is None, f"prepare ended before its first copy: {run.communicate()}"
        assert time.monotonic() < deadline, "prepare never wrote a copy"
        time.sleep(0.01)
    family = group_of(run.pid)
    os.killpg(run.pid, signal.SIGINT)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "Check failed" not in stderr, stderr
    # Ray's own log lines (its INFO on starting) come before fvc's line.
    assert "interrupted: progress so far is saved; run the same command again to resume" in stderr.splitlines()
    wait_until_gone(family, "processes of the Ray instance fvc prepare started")
    assert not list(tmp.glob("fvc-prepare-*"))
