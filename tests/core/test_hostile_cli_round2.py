"""More hostile input through the real ``fvc`` executable (issue 37, second round), in the style of
test_hostile_cli.py: exit 2 and exactly one ``error: ...`` line per problem naming the key or option
(or exit 0 where the input is fine), never a traceback. No case trains a model: every override that
follows an option is one `fvc run` refuses, so reading it is what the case shows."""

from __future__ import annotations

import os
import textwrap
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.core.test_hostile_cli import GOOD, Case, assert_one_line_per_problem, run_fvc

# A sweep section whose draw count YAML reads as a boolean (`points: yes`).
SWEEP_BOOL = GOOD + textwrap.dedent("""\
    sweep:
      random: {points: yes, keys: {trainer.lr: {loguniform: [1.0e-4, 1.0e-2]}}}
    """)
FILES = {
    "good.yaml": GOOD,
    "bools.yaml": GOOD.replace("output_dir: out", "output_dir: out\nseed: yes")
                      .replace("epochs: 1,", "epochs: true,"),
    "sweepbool.yaml": SWEEP_BOOL,
    "noname.yaml": GOOD.replace("{name: naive_cnn}", "{nmae: naive_cnn, chunk_size: 3}"),
}

CHECK = ["check", "good.yaml"]
WINDOW = ["data.sampler=window", "data.num_frames=null"]
R3D = ["model.name=r3d", *WINDOW, "data.clip_len=4", "data.size=32"]
CASES = [
    # 7a: options anywhere, even between CONFIG and the overrides, for every command taking overrides
    Case("run: an option between CONFIG and the overrides", ["run", "good.yaml", "--fresh", "trainer.epochs=0"],
         lines=["good.yaml: trainer.epochs: Input should be greater than or equal to 1 (got 0)"]),
    Case("run: an option last", ["run", "good.yaml", "trainer.epochs=0", "--fresh"],
         lines=["good.yaml: trainer.epochs: Input should be greater than or equal to 1 (got 0)"]),
    Case("sweep: options between the overrides", ["sweep", "good.yaml", "--yes", "trainer.epochs=0,1", "--name", "s"],
         lines=["point epochs=0: trainer.epochs: Input should be greater than or equal to 1 (got 0)"]),
    Case("check: -p after CONFIG", [*CHECK, "-p", "no:mlflow", "seed=3"], code=0, stdout="seed: 3\n"),
    Case("check: a wrong -p after CONFIG", [*CHECK, "-p", "no:mlfow", "seed=3"],
         lines=["-p no:mlfow: no installed plugin is named 'mlfow' (did you mean 'mlflow'?)"]),
    Case("verify (a plugin's command): an option between", ["verify", "good.yaml", "-j", "1", "data.size=4"],
         lines=["data.size: Input should be greater than or equal to 8 (got 4)"]),
    Case("an unknown option is named alone, not the overrides after it", ["run", "good.yaml", "--bogus", "seed=3"],
         lines=["unrecognized arguments: --bogus (see"]),
    # 7b: a boolean is not a number, in an override, a YAML file, a plugin's section or the sweep section
    Case("clip_len=true", [*CHECK, *WINDOW, "data.clip_len=true"],
         lines=["good.yaml: data.clip_len: expected a number, got the boolean true"]),
    Case("booleans for numbers in every section", [*CHECK, "data.size=false", "model.dropout=true",
                                                   "trainer.betas=[true, 0.9]", "trainer.early_stopping.patience=on"],
         lines=["data.size: expected a number, got the boolean false",
                "model.dropout: expected a number, got the boolean true",
                "trainer.betas[0]: expected a number, got the boolean true",
                "trainer.early_stopping.patience: expected a number, got the boolean true"]),
    Case("booleans for numbers in the YAML file", ["check", "bools.yaml"],
         lines=["bools.yaml: seed: expected a number, got the boolean true",
                "bools.yaml: trainer.epochs: expected a number, got the boolean true"]),
    Case("a boolean for a tracker's number", [*CHECK, "trackers=[console, duckdb]", "duckdb.lock_timeout_s=true"],
         lines=["duckdb.lock_timeout_s: expected a number, got the boolean true"]),
    Case("a boolean for the sweep's number of points", ["check", "sweepbool.yaml"],
         lines=["sweepbool.yaml: sweep.random.points: expected a number, got the boolean true"]),
    Case("a boolean key stays a boolean", [*CHECK, "trainer.refit=true"], code=0, stdout="refit: true"),
    # 7d: every model problem at once, a mismatch with the clips included
    Case("a model key and two clip mismatches", [*CHECK, "model.name=r3d", "model.window=0"],
         lines=["model.window: Input should be greater than or equal to 1 (got 0)",
                "model.name: 'r3d' needs frames of at least 32 x 32; data.size gives 16 x 16 (with model.window",
                "model.name: 'r3d' needs consecutive frames (data.sampler: window); data.sampler is uniform"]),
    Case("two unknown model keys and a mismatch", [*CHECK, "model.name=r3d", "model.windw=2", "model.blcks=1",
                                                   *WINDOW, "data.clip_len=4"],
         lines=["model.windw: unknown key", "model.blcks: unknown key",
                "model.name: 'r3d' needs frames of at least 32 x 32; data.size gives 16 x 16"]),
    Case("a model problem and a data problem and a mismatch", [*CHECK, "model.name=r3d", "data.size=4",
                                                               "model.blocks=3"],
         lines=["data.size: Input should be greater than or equal to 8 (got 4)", "model.blocks: Input should be",
                "model.name: 'r3d' needs consecutive frames (data.sampler: window); data.sampler is uniform "
                "(frames spread over the whole video) (with data.size, model.blocks at their defaults"]),
    Case("a misspelt model name is said with the missing name", ["check", "noname.yaml"],
         lines=["noname.yaml: model.name: required, the model plugin to use",
                "noname.yaml: model.nmae: unknown key (did you mean 'name'?)"]),
    # 7e: bounds where a data value makes no sense
    Case("fps 1e-9", [*CHECK, *WINDOW, "data.clip_len=4", "data.fps=1.0e-9"],
         lines=["data.fps: Input should be greater than or equal to 0.1 (got 1e-09)"]),
    Case("fps a million", [*CHECK, *WINDOW, "data.clip_len=4", "data.fps=1000000"],
         lines=["data.fps: Input should be less than or equal to 1000"]),
    Case("size, frames, windows beyond sense", [*CHECK, "data.size=100000", "data.num_frames=10000000"],
         lines=["data.size: Input should be less than or equal to 4096", "data.num_frames: Input should be less"]),
    Case("clip_len and clips_per_video beyond sense", [*CHECK, *WINDOW, "data.clip_len=1000000",
                                                       "data.clips_per_video=100000"],
         lines=["data.clip_len: Input should be less than or equal to 10000",
                "data.clips_per_video: Input should be less than or equal to 1000"]),
    Case("synthetic videos beyond sense", [*CHECK, "data.frames=1000000", "data.frame_size=100000"],
         lines=["data.frames: Input should be less than or equal to 10000",
                "data.frame_size: Input should be less than or equal to 4096"]),
    Case("weights_fps 1e-9", [*CHECK, *R3D, "model.weights_fps=1.0e-9"],
         lines=["model.weights_fps: Input should be greater than or equal to 0.1"]),
    Case("sane values pass", [*CHECK, *R3D, "data.fps=0.5", "model.weights_fps=0.5"], code=0,
         stdout="fps: 0.5"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile2")
    for name, content in FILES.items():
        (root / name).write_text(content)
    return root


@pytest.fixture(scope="module")
def outcomes(workspace: Path):
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = pool.map(lambda c: run_fvc(workspace, c.argv, c.env), CASES)
        return {c.id: out for c, out in zip(CASES, done, strict=True)}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_hostile_input_round2_fails_in_one_line_per_problem(case: Case, workspace: Path, outcomes):
    assert_one_line_per_problem(case, outcomes[case.id])
    if case.code == 0:
        return
    # nothing was trained or written: every case stops at the config
    assert not (workspace / "out").exists() and not (workspace / "data").exists(), os.listdir(workspace)
