"""`fvc run executor.name=ray` with no address: the Ray instance it starts on this machine, seen from
outside while a real run is parked in a fold (tests/executors/park_site). Every socket the run's
processes listen on is on the loopback interface; when the instance's node dies, the run ends in one
line and the same command finishes it."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")
pytest.importorskip("fvc_loaders")
pytest.importorskip("fvc_naive_cnn")

from tests.builders import DROP, tiny_experiment, tiny_videos  # noqa: E402

FVC = [sys.executable, "-m", "fvc_core.cli"]
PARK_SITE = Path(__file__).parent / "park_site"
# Generous: only a broken run gets near it, and the test then fails naming what it waited for.
DEADLINE_S = 240.0


def env(**extra: str) -> dict[str, str]:
    """The user's environment, with no Ray cluster named: the run starts its own instance."""
    base = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    return {**base, "CI": "1", "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0", **extra}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    return tiny_videos(tmp_path_factory.mktemp("ray_local") / "videos", videos=4, seed=3)


def experiment(root: Path, table: Path, trackers: list[str]) -> Path:
    return tiny_experiment(root, table, experiment="local_ray", seed=13, output_dir=str(root / "runs"),
                           trainer={"epochs": 2, "grad_accum": DROP, "warmup_epochs": DROP}, trackers=trackers,
                           executor={"name": "ray"})


def start_parked(config: Path, gate: Path, parked: Path) -> subprocess.Popen:
    """The real `fvc run`, whose Ray workers park at their first video read once ``gate`` exists."""
    return subprocess.Popen([*FVC, "run", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            env=env(PYTHONPATH=str(PARK_SITE), FVC_TEST_PARK_GATE=str(gate),
                                    FVC_TEST_PARKED=str(parked)))


def wait_parked(proc: subprocess.Popen, parked: Path) -> None:
    end = time.monotonic() + DEADLINE_S
    while not parked.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended (exit {proc.returncode}) before a fold parked:\n{out}\n{err}")
        if time.monotonic() > end:
            pytest.fail(f"no fold parked within {DEADLINE_S:g} s ({parked} never appeared)")
        time.sleep(0.1)


def process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def command_line(pid: int) -> str:
    """The program's own name, then its arguments: the folder it lives in is as long as the checkout's path,
    and would push the name out of a shortened line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return ""
    words = [w.decode(errors="replace") for w in argv if w]
    return " ".join([Path(words[0]).name, *words[1:]]) if words else ""


def listening_sockets() -> dict[int, ipaddress.IPv4Address | ipaddress.IPv6Address | tuple]:
    """Every listening TCP socket of this network namespace: ``{inode: (address, port)}``."""
    out: dict[int, tuple] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A":  # TCP_LISTEN
                continue
            host, port = fields[1].split(":")
            raw = bytes.fromhex(host)
            # The kernel prints the address as 32-bit words in host (little-endian) order.
            packed = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            out[int(fields[9])] = (ipaddress.ip_address(packed), int(port, 16))
    return out


def sockets_of(pids: list[int]) -> list[tuple[int, str, str, int]]:
    """(pid, command, address, port) of every listening TCP socket the processes ``pids`` hold open."""
    listening = listening_sockets()
    found = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:[") and int(target[8:-1]) in listening:
                address, port = listening[int(target[8:-1])]
                found.append((pid, command_line(pid)[:80], str(address), port))
    return found


def loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1, an IPv6 socket bound to IPv4's loopback
    return ip.is_loopback or bool(mapped and mapped.is_loopback)


def stop(proc: subprocess.Popen) -> None:
    """End what the test started: the run, and anything of its process tree still there."""
    tree = process_tree(proc.pid)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            pass
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


def test_every_socket_a_local_ray_run_listens_on_is_on_the_loopback_interface(tmp_path, videos):
    # Trackers in their own process (MLflow, DuckDB) too: every server fvc starts is in the tree.
    config = experiment(tmp_path, videos, ["console", "mlflow", "duckdb"])
    gate, parked = tmp_path / "runs" / "naive_cnn" / "config.yaml", tmp_path / "parked"
    proc = start_parked(config, gate, parked)
    try:
        wait_parked(proc, parked)
        tree = process_tree(proc.pid)
        found = sockets_of(tree)
    finally:
        stop(proc)
    # Ray's own servers were up and seen: the GCS, the raylet, the parked worker.
    commands = " ".join(command for _, command, _, _ in found)
    assert "gcs_server" in commands and "raylet" in commands, found
    assert int(parked.read_text()) in {pid for pid, _, _, _ in found}, found
    exposed = [s for s in found if not loopback(s[2])]
    assert not exposed, f"listening beyond the loopback interface: {exposed}"


def test_when_the_local_ray_node_dies_the_run_says_so_in_one_line_and_the_same_command_finishes(tmp_path, videos):
    config = experiment(tmp_path, videos, ["console"])
    run_dir = tmp_path / "runs" / "naive_cnn"
    gate, parked = run_dir / "fold_0" / "last.pt", tmp_path / "parked"
    proc = start_parked(config, gate, parked)
    try:
        wait_parked(proc, parked)
        # Ray's dashboard agent: the raylet fate-shares with it, so the node goes down with it.
        [agent] = [pid for pid in process_tree(proc.pid) if command_line(pid).startswith("ray::DashboardAgent")]
        os.kill(agent, signal.SIGKILL)
        out, err = proc.communicate(timeout=DEADLINE_S)
    finally:
        stop(proc)
    assert proc.returncode == 2, out + err
    assert "Traceback" not in out + err and "failed internally" not in err, out + err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [err.strip().splitlines()[-1]], err
    [line] = errors
    assert line.startswith("error: the Ray instance this run started on this machine died: its node 127.0.0.1 "
                           "(dashboard_agent failed"), line
    assert line.endswith("finished epochs are kept: run the same command again to resume"), line
    assert (run_dir / "fold_0" / "last.pt").exists()

    again = subprocess.run([*FVC, "run", str(config)], capture_output=True, text=True, env=env(), timeout=DEADLINE_S)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads((run_dir / "run.json").read_text())["status"] == "finished"
    for fold in (0, 1):
        history = json.loads((run_dir / f"fold_{fold}" / "history.json").read_text())
        assert [row["epoch"] for row in history] == [1, 2], history
        assert (run_dir / f"fold_{fold}" / "metrics.json").exists()
