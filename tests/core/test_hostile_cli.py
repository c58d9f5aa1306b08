"""The real ``fvc`` executable fed hostile and broken input: every case ends with exit 2 and one
``error: ...`` line per problem naming the file, key or plugin (or exit 0 where the input is fine),
and never a traceback. No case trains a model: config problems go through ``fvc check``."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

FVC = str(Path(sys.executable).parent / "fvc")
# A case that outlives this has hung: a safety net only, no case is expected to come near it.
HANG = 180

GOOD = """\
experiment: hostile
output_dir: out
data: {name: synthetic, root: data, videos: 4, num_frames: 4, size: 16}
model: {name: naive_cnn}
trainer: {name: supervised, folds: 2, epochs: 1, warmup_epochs: 0}
trackers: [console]
"""


def _alias_bomb(levels: int = 9) -> str:
    """The "billion laughs": each level lists the previous one 9 times, 9**9 strings in all."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, levels)]
    return GOOD + "\n".join(lines) + "\n"


def _interpolation_bomb() -> str:
    """The same through OmegaConf: each string repeats the previous one 10 times (40 * 10**9 chars)."""
    lines = ['l0: "' + "x" * 40 + '"'] + [f'l{i}: "' + f"${{l{i - 1}}}" * 10 + '"' for i in range(1, 10)]
    return GOOD + "\n".join(lines) + "\n"


FILES: dict[str, str | bytes] = {
    "good.yaml": GOOD,
    "bomb.yaml": _alias_bomb(),
    "ibomb.yaml": _interpolation_bomb(),
    "recursive.yaml": GOOD + "loop: &loop [1, *loop]\n",
    "list.yaml": "- data\n- model\n",
    "scalar.yaml": "just some text\n",
    "empty.yaml": "",
    "garbage.yaml": bytes(range(256)) * 4,
    "latin1.yaml": GOOD.replace("hostile", "caf\xe9").encode("latin-1"),
    "nul.yaml": GOOD + "seed: \x00\n",
    "tag.yaml": GOOD.replace("experiment: hostile", 'experiment: !!python/object/apply:os.mkdir ["pwned_file"]'),
    "dupkey.yaml": GOOD + "trainer: {name: supervised, epochs: 50}\n",
    "intkey.yaml": GOOD + "1: one\n",
    "newlinekey.yaml": GOOD + '"bad\\nkey": 1\n',
    "date.yaml": GOOD.replace("experiment: hostile", "experiment: !!timestamp 2024-01-31"),
    "datetext.yaml": GOOD.replace("experiment: hostile", "experiment: 2024-01-31"),
    "many.yaml": GOOD.replace("output_dir: out", "output_dir: out\nseed: -1\noutptu: x")
                     .replace("{name: naive_cnn}", "{name: naive_cnm}")
                     .replace("epochs: 1,", "epochs: 0,"),
    "big.yaml": GOOD + "".join(f"# {'padding ' * 12}\n" for _ in range(15000)),
    "unreadable.yaml": GOOD,
    "notduck.duckdb": "this is not a DuckDB database\n",
    "notrun/readme.txt": "my own notes, not an fvc run\n",
    "norun/config.yaml": "data: {name: metadata, metadata: missing.parquet}\nmodel: {name: naive_cnn}\n"
                         "trainer: {name: supervised}\n",
}

BROKEN_PLUGIN = {
    "fvchostile_broken.py": "raise ImportError('this plugin is broken on purpose')\n",
    "fvchostile_broken-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: fvchostile-broken\nVersion: 1.0\n",
    "fvchostile_broken-1.0.dist-info/entry_points.txt": "[fvc]\nbroken = fvchostile_broken\n",
}


@dataclass
class Case:
    id: str
    argv: list[str]
    code: int = 2
    # one fragment per expected stderr line, each found in its own line
    lines: list[str] = field(default_factory=list)
    stdout: str = ""
    env: dict[str, str] = field(default_factory=dict)
    broken_plugin: bool = False
    xfail: str = ""
    root_skip: bool = False


CHECK = ["check", "good.yaml"]
CASES = [
    # overrides
    Case("override unclosed list", [*CHECK, "experiment=[unclosed"],
         lines=["override 'experiment=[unclosed': invalid YAML value"]),
    Case("override without value", [*CHECK, "trainer.epochs="], lines=["override 'trainer.epochs=': no value"]),
    Case("override without key", [*CHECK, "=3"], lines=["override '=3': expected dotted.key=value"]),
    Case("override without =", [*CHECK, "noequals"], lines=["override 'noequals': expected dotted.key=value"]),
    Case("override empty key part", [*CHECK, "a..b=1"], lines=["override 'a..b=1'"]),
    Case("every bad override reported", [*CHECK, "a..b=1", "trainer.epochs=", "noequals"],
         lines=["override 'a..b=1'", "override 'trainer.epochs='", "override 'noequals'"]),
    Case("override into a scalar", [*CHECK, "experiment.x=1"],
         lines=["override 'experiment.x=1': experiment is a str, not a section"]),
    Case("override into a list", [*CHECK, "trackers.0=mlflow"],
         lines=["override 'trackers.0=mlflow': trackers is a list"]),
    Case("interpolation of a missing key", [*CHECK, "trainer.epochs=${oops}"],
         lines=["good.yaml: trainer.epochs: ${oops} names no key of the config"]),
    Case("interpolation cycle", [*CHECK, "experiment=${seed}", "seed=${experiment}"],
         lines=["interpolation cycle"]),
    Case("interpolation of a whole section", [*CHECK, "experiment=${model}"],
         lines=["experiment: ${model} is a whole section"]),
    Case("oc.env reads the environment", [*CHECK, "output_dir=${oc.env:FVC_HOSTILE_DIR}/runs"], code=0,
         env={"FVC_HOSTILE_DIR": "/scratch/me"}, stdout="output_dir: /scratch/me/runs"),
    Case("output_dir the filesystem root", [*CHECK, "output_dir=/"], lines=["output_dir /: the filesystem root"]),
    Case("output_dir an existing file", [*CHECK, "output_dir=good.yaml"],
         lines=["/good.yaml: exists and is not a folder"]),
    Case("oc.env of an unset variable", [*CHECK, "output_dir=${oc.env:FVC_HOSTILE_UNSET}"],
         lines=["output_dir: ${oc.env:FVC_HOSTILE_UNSET}: the environment variable FVC_HOSTILE_UNSET is not set"]),
    Case("resolver that parses YAML", [*CHECK, 'experiment=${oc.decode:"[1"}'],
         lines=["experiment: ${oc.decode:\"[1\"} is not supported"]),
    Case("nested interpolation", [*CHECK, "experiment=${oc.env:${seed}}"], lines=["experiment: nested interpolation"]),
    Case("python tag in an override", [*CHECK, 'experiment=!!python/object/apply:os.mkdir ["pwned_override"]'],
         lines=["the tag !!python/object/apply:os.mkdir is not allowed"]),
    Case("python name tag in an override", [*CHECK, "experiment=!!python/name:os.system"],
         lines=["the tag !!python/name:os.system is not allowed"]),
    Case("alias bomb in an override",
         [*CHECK, "experiment=[&a [1,1,1,1,1,1,1,1,1,1], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a], "
                  "&c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b], &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c], "
                  "&e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d], &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e], "
                  "&g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]]"],
         lines=["YAML aliases expand to 12,345,678 values, more than the 100,000"]),
    Case("alias that contains itself in an override", [*CHECK, "experiment=&a [*a]"],
         lines=["override 'experiment=&a [*a]': experiment[0]: a YAML alias that contains itself"]),
    Case("huge integer", [*CHECK, "trainer.epochs=99999999999999999999999999"],
         lines=["trainer.epochs: the integer 99999999999999999999... (26 digits) does not fit in 64 bits"]),
    Case("NaN", [*CHECK, "trainer.lr=.nan"], lines=["trainer.lr: nan is not a usable value"]),
    Case("infinity", [*CHECK, "trainer.lr=.inf"], lines=["trainer.lr: inf is not a usable value"]),
    Case("negative epochs", [*CHECK, "trainer.epochs=-3"], lines=["trainer.epochs: Input should be greater than"]),
    Case("negative seed", [*CHECK, "seed=-1"], lines=["seed: Input should be greater than or equal to 0"]),
    Case("unknown model plugin", [*CHECK, "model.name=nope"], lines=["model.name: unknown model 'nope'"]),
    Case("unknown tracker", [*CHECK, "trackers=[console, mlfow]"], lines=["trackers[1]: unknown tracker 'mlfow'"]),
    # the config file
    Case("several problems at once", ["check", "many.yaml"],
         lines=["many.yaml: outptu: unknown key", "many.yaml: seed: Input should be greater than",
                "many.yaml: model.name: unknown model 'naive_cnm'", "many.yaml: trainer.epochs: Input should be"]),
    Case("alias bomb", ["check", "bomb.yaml"],
         lines=["bomb.yaml: YAML aliases expand to 490,329,072 values, more than the 100,000"]),
    Case("interpolation bomb", ["check", "ibomb.yaml"], lines=["ibomb.yaml: interpolations expand to more than"]),
    Case("alias that contains itself", ["check", "recursive.yaml"],
         lines=["recursive.yaml: loop[1]: a YAML alias that contains itself"]),
    Case("python tag in the file", ["check", "tag.yaml"],
         lines=["tag.yaml:1:13: invalid YAML: the tag !!python/object/apply:os.mkdir is not allowed"]),
    Case("a list", ["check", "list.yaml"], lines=["list.yaml: the config must be a mapping of sections, got list"]),
    Case("a scalar", ["check", "scalar.yaml"], lines=["scalar.yaml: the config must be a mapping of sections, got"]),
    Case("empty file", ["check", "empty.yaml"], lines=["empty.yaml: the config is empty"]),
    Case("binary garbage", ["check", "garbage.yaml"], lines=["garbage.yaml: not UTF-8 text"]),
    Case("invalid UTF-8", ["check", "latin1.yaml"], lines=["latin1.yaml: not UTF-8 text (byte 0xe9"]),
    Case("NUL character", ["check", "nul.yaml"], lines=["nul.yaml: invalid YAML: character #x0000"]),
    Case("duplicate key", ["check", "dupkey.yaml"], lines=["dupkey.yaml:7:1: invalid YAML: duplicate key 'trainer'"]),
    Case("key that is not text", ["check", "intkey.yaml"], lines=["intkey.yaml: 1: a key must be text"]),
    Case("key with a newline", ["check", "newlinekey.yaml"], lines=["newlinekey.yaml: bad\\nkey: unknown key"]),
    Case("date value", ["check", "date.yaml"], lines=["date.yaml: experiment: a YAML date (2024-01-31)"]),
    Case("a date-like name stays text", ["check", "datetext.yaml"], code=0, stdout="experiment: '2024-01-31'"),
    Case("huge file", ["check", "big.yaml"], lines=["bytes, more than the 1048576 a config may have"]),
    Case("a folder as CONFIG", ["check", "notrun"], lines=["notrun: is a folder"]),
    Case("a device as CONFIG", ["check", "/dev/zero"], lines=["/dev/zero: not a regular file"]),
    Case("missing CONFIG", ["check", "nowhere.yaml"], lines=["nowhere.yaml: config file not found"]),
    Case("unreadable CONFIG", ["check", "unreadable.yaml"], lines=["unreadable.yaml: cannot read config (permission"],
         root_skip=True),
    # the rest of the command line
    Case("good config", CHECK, code=0, stdout="experiment: hostile"),
    Case("unknown command", ["frobnicate"], lines=["invalid choice: 'frobnicate'"]),
    Case("check without CONFIG", ["check"], lines=["the following arguments are required: config"]),
    Case("-p without a value", ["-p"], lines=["argument -p: expected one argument"]),
    Case("predict without arguments", ["predict"], lines=["fvc predict: the following arguments are required"]),
    Case("bad -p option", ["-p", "foo", "plugins"], lines=["-p foo: expected -p no:NAME"]),
    Case("empty -p name", ["-p", "no:", "plugins"], lines=["-p no:: expected -p no:NAME"]),
    Case("predict on a folder that is not a run", ["predict", "notrun", "video.mp4"],
         lines=["notrun/config.yaml: not found; RUN_DIR is"]),
    Case("predict on a run without finished folds and a missing video", ["predict", "norun", "missing.mp4"],
         lines=["norun: no finished fold"]),
    Case("predict to an unknown output format", ["predict", "norun", "missing.mp4", "-o", "scores.xlsx"],
         lines=["-o scores.xlsx: use a .csv, .json or .parquet file name"]),
    Case("results on a file that is not DuckDB", ["results", "--db", "notduck.duckdb"], lines=["notduck.duckdb"]),
    Case("results on a missing database", ["results", "--db", "nowhere/results.duckdb"],
         lines=["--db nowhere/results.duckdb: no such file or folder"]),
    Case("index of a missing folder", ["index", "nowhere", "-o", "table.parquet"], lines=["nowhere: not a folder"]),
    Case("verify a missing table", ["verify", "nowhere.parquet"], lines=["nowhere.parquet: metadata table not found"]),
    Case("schema with a broken plugin", ["schema"], code=0, broken_plugin=True, stdout='"title": "fvc experiment"'),
    Case("schema with a broken plugin disabled", ["-p", "no:broken", "schema"], code=0, broken_plugin=True,
         stdout='"title": "fvc experiment"'),
    Case("a model of a broken plugin", [*CHECK, "model.name=tiny"], broken_plugin=True,
         lines=["model.name: unknown model 'tiny' (did you mean 'xception' or 'timm'?); plugins that failed to "
                "load: broken (ImportError: this plugin is broken on purpose)"]),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile")
    for name, content in {**FILES, **{f"site/{k}": v for k, v in BROKEN_PLUGIN.items()}}.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(textwrap.dedent(content) if name.startswith("site/") else content)
    (root / "unreadable.yaml").chmod(0)
    return root


def run_fvc(workspace: Path, argv: list[str], env: dict[str, str] | None = None,
            broken_plugin: bool = False) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("FVC_")}
    full_env.update(env or {})
    if broken_plugin:
        full_env["PYTHONPATH"] = str(workspace / "site")
    try:
        return subprocess.run([FVC, *argv], cwd=workspace, env=full_env, capture_output=True, text=True,
                              timeout=HANG)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, -9, "", f"fvc {' '.join(argv)}: still running after {HANG} s")


@pytest.fixture(scope="module")
def outcomes(workspace: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every case run once, a few at a time: each is a separate fvc process that mostly waits on imports."""
    cases = [c for c in CASES if not (c.root_skip and os.geteuid() == 0)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = pool.map(lambda c: run_fvc(workspace, c.argv, c.env, c.broken_plugin), cases)
        return {c.id: out for c, out in zip(cases, done, strict=True)}


def assert_one_line_per_problem(case: Case, out: subprocess.CompletedProcess) -> None:
    """No traceback; the case's exit code; with exit 2, one ``error:`` line per expected problem, each
    holding its fragment (with exit 0, the expected output)."""
    assert "Traceback" not in out.stderr + out.stdout, out.stderr
    assert out.returncode == case.code, out.stderr
    if case.code == 0:
        assert case.stdout in out.stdout
        return
    lines = out.stderr.splitlines()
    assert all(line.startswith("error: ") for line in lines), out.stderr
    assert len(lines) == len(case.lines), out.stderr
    for fragment in case.lines:
        assert any(fragment in line for line in lines), f"{fragment!r} not in:\n{out.stderr}"


@pytest.mark.parametrize("case", [
    pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else [])
    for c in CASES])
def test_hostile_input_fails_in_one_line_per_problem(case: Case, workspace: Path, outcomes):
    if case.root_skip and os.geteuid() == 0:
        pytest.skip("root reads a file without read permission")
    assert_one_line_per_problem(case, outcomes[case.id])
    # nothing in the input was ever run: the python/object tags would have made these folders
    assert not (workspace / "pwned_file").exists() and not (workspace / "pwned_override").exists()


def test_the_sweep_has_at_least_30_cases():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


# Linux carries a process's peak RSS across exec: fvc forked straight from this (large) test process
# would report the test process's memory. A small fresh interpreter forks it instead and reports its peak.
_MEASURE = """
import os, subprocess, sys, threading
proc = subprocess.Popen(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=open(sys.argv[1], "w"))
timer = threading.Timer(float(os.environ["HANG"]), proc.kill)
timer.start()
_, status, usage = os.wait4(proc.pid, 0)
timer.cancel()
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


def _max_rss_mb(argv: list[str], cwd: Path) -> tuple[int, float, str]:
    """Run fvc; its exit code, its peak memory (MB, from the kernel's rusage) and stderr."""
    err_path = cwd / "stderr.txt"
    # HANG: a safety net for the unfixed code, which runs for minutes.
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(err_path), FVC, *argv], cwd=cwd, check=True,
                         capture_output=True, text=True, env={**os.environ, "HANG": str(HANG)}).stdout
    code, peak_kb = out.split()
    return int(code), int(peak_kb) / 1024, err_path.read_text()


@pytest.mark.parametrize("name", ["bomb.yaml", "ibomb.yaml"])
def test_a_yaml_or_interpolation_bomb_is_refused_before_it_is_expanded(name: str, workspace: Path):
    code, rss_mb, err = _max_rss_mb(["check", name], workspace)
    assert code == 2 and len(err.splitlines()) == 1 and "bomb?" in err, err
    # expanding it would need tens of GB; refusing it costs what fvc check always costs
    assert rss_mb < 300, rss_mb
