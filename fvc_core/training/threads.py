"""How many threads torch computes with in a training process (``trainer.num_threads``).

torch sizes its OpenMP pool to the CPUs in the affinity mask, and its threads spin while they wait
for each other. On a machine shared with other work both hurt: a cgroup quota (a container, a Slurm
or systemd limit) gives fewer CPUs than the mask shows, so the threads outnumber the CPU time there
is, and a spinning thread burns the time slice a descheduled peer (or a neighbour's process)
needed. Measured on 2 shared cores: epochs of 13-20 s against 1.2 s quiet, 1.3-2.0 s with one
thread (docs/trainer.md). ``auto`` takes the fewest of: CPUs in the affinity mask, the cgroup CPU
quota, and ``OMP_NUM_THREADS`` when set (the user's, or Ray's: it sets the variable to a task's
``num_cpus`` in the worker); and OpenMP's waiting threads sleep instead of spinning
(``OMP_WAIT_POLICY=PASSIVE`` unless set, read once when torch loads: the trainer sets this up before
it imports torch). A number instead of ``auto`` is that many threads, OpenMP left as torch has it.
DataLoader workers run one torch thread each (torch's own rule) and inherit the wait policy.

Standard library only at import: the trainer calls this before torch loads.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class Threads:
    """The intra-op thread count torch was given, and what decided it (for the log)."""

    count: int
    why: str


def affinity_cpus() -> int | None:
    """CPUs this process may run on (``taskset``, a cpuset); None where the OS does not say."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _quota(text: str, period: str | None = None) -> float | None:
    """CPUs a cgroup's quota gives: cgroup v2's ``cpu.max`` ("quota period" or "max period"), or v1's
    ``cfs_quota_us`` with its period (-1: no limit)."""
    fields = text.split()
    if period is not None:
        fields = [fields[0], period.strip()] if fields else []
    if len(fields) != 2 or fields[0] in ("max", "-1"):
        return None
    try:
        quota, per = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / per if quota > 0 and per > 0 else None


def cgroup_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = Path("/proc/self/cgroup")) -> int | None:
    """CPUs the tightest CPU quota on this process's cgroup path allows (rounded up), v2 or v1;
    None when there is no quota or no cgroup to read. A limit set on an ancestor (a Slurm job, a
    systemd slice) binds its descendants, so every level up to the root counts."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return None
    limits: list[float] = []
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":  # cgroup v2 (unified)
            bases, files = [root, root / "unified"], ("cpu.max",)
        elif "cpu" in controllers.split(","):  # cgroup v1's cpu controller
            bases, files = [root / controllers, root / "cpu", root / "cpu,cpuacct"], ("cpu.cfs_quota_us",)
        else:
            continue
        for base in dict.fromkeys(bases):
            level = Path(path.lstrip("/"))
            while True:
                folder = base / level
                for name in files:
                    try:
                        text = (folder / name).read_text()
                        period = None if name == "cpu.max" else (folder / "cpu.cfs_period_us").read_text()
                    except OSError:
                        continue
                    if (cpus := _quota(text, period)) is not None:
                        limits.append(cpus)
                if level == Path("."):
                    break
                level = level.parent
    return max(1, math.ceil(min(limits))) if limits else None


def omp_num_threads() -> int | None:
    value = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


def auto_threads() -> Threads:
    """The fewest CPUs any limit on this process allows, named."""
    limits = [(n, why) for n, why in ((affinity_cpus(), "CPUs in the affinity mask"),
                                      (cgroup_cpus(), "the cgroup's CPU quota"),
                                      (omp_num_threads(), "OMP_NUM_THREADS"))
              if n is not None]
    if not limits:
        return Threads(max(1, os.cpu_count() or 1), "CPUs on the machine")
    count, why = min(limits, key=lambda limit: limit[0])
    return Threads(count, f"auto: {why}")


def set_up_threads(setting: int | str) -> Threads:
    """Give torch ``setting`` intra-op threads (``"auto"``: :func:`auto_threads`, and OpenMP's waiting
    threads sleep); call before torch is imported where possible, so the wait policy takes effect."""
    if setting == "auto":
        # setdefault: a user's own OMP_WAIT_POLICY stands. Read by OpenMP when torch loads; a process that
        # already has torch keeps the policy it loaded with (the count below still applies). A number
        # in trainer.num_threads is that count alone, OpenMP as torch has it (what the benchmark compares).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    threads = auto_threads() if setting == "auto" else Threads(int(setting), "trainer.num_threads")
    import torch

    if torch.get_num_threads() != threads.count:
        torch.set_num_threads(threads.count)
    return threads
