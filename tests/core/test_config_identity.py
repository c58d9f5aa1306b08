"""A run folder an older fvc made, before config keys that now hold their defaults existed, is the
same experiment: `fvc run` and `fvc sweep` resume it (finished folds kept, an interrupted one from its
last.pt), `fvc predict` scores with its models; a non-default value of such a key is refused.

The "older fvc" folder is a real run's folder with trainer.aggregation and trainer.top_k taken out of
its config.yaml and its checkpoints, and the hash of that older config written where fvc writes it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

for plugin in ("fvc_loaders", "fvc_naive_cnn", "fvc_duckdb", "fvc_mlflow"):
    pytest.importorskip(plugin)

import duckdb  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from fvc_core.cli import main  # noqa: E402
from fvc_core.config import load_config  # noqa: E402
from fvc_core.config.identity import Defaults, compare  # noqa: E402
from fvc_core.plugins import clear_cache  # noqa: E402
from fvc_core.training import checkpoint  # noqa: E402
from tests.builders import tiny_experiment, tiny_videos, write_distribution  # noqa: E402

TRACKERS = "trackers=[console,duckdb,mlflow]"
ADDED = ("aggregation", "top_k")  # trainer keys an "older fvc" did not have
MARK = 123.0  # train_loss planted in fold 1's last.pt: found in its history.json only if it resumed from there

# Stops the run (as Ctrl-C would) once fold 1 has checkpointed its first epoch.
STOPPER = '''
from fvc_core.hookspecs import hookimpl
from fvc_core.tracking import Tracker, TrackerConfig

class Stopper(Tracker):
    def __init__(self, cfg=None):
        pass
    def log_epoch(self, fold, epoch, metrics, step):
        if fold == 1:
            raise KeyboardInterrupt

@hookimpl
def register_trackers(register):
    register("stopper", Stopper, config=TrackerConfig)
'''


def older_hash(config: dict[str, Any]) -> str:
    """ResolvedConfig.hash() as every fvc version computed it, over what config.yaml holds."""
    ident = {k: config[k] for k in ("seed", "data", "model", "trainer")}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]


def make_older(run_dir: Path) -> tuple[str, str]:
    """Turn a run folder into one an fvc without trainer.aggregation/top_k made; (old hash, new hash)."""
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    new = older_hash(config)
    for key in ADDED:
        del config["trainer"][key]
    old = older_hash(config)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    state = json.loads((run_dir / "run.json").read_text())
    assert state["config_hash"] == new  # what the current fvc wrote: the hash of its config.yaml
    (run_dir / "run.json").write_text(json.dumps({**state, "config_hash": old}, indent=2))
    for path in run_dir.glob("fold_*/*.pt"):
        saved = checkpoint.load_safe(path)
        saved["config_hash"] = old
        if "config" in saved:
            saved["config"]["trainer"] = {k: v for k, v in saved["config"]["trainer"].items() if k not in ADDED}
        if path.name == "last.pt":
            saved["history"][0]["train_loss"] = MARK
        checkpoint.save_atomic(saved, path)
    if (run_dir.parent / "results.duckdb").exists():  # the trackers' records of the older run
        with duckdb.connect(str(run_dir.parent / "results.duckdb")) as con:
            con.execute("UPDATE runs SET config_hash = ?", [old])
        client = MlflowClient(f"sqlite:///{run_dir.parent / 'mlflow.db'}")
        for parent in client.search_runs(client.search_experiments()[0].experiment_id.split(),
                                         "tags.`fvc.role` = 'parent'"):
            client.set_tag(parent.info.run_id, "config_hash", old)
    return old, new


def experiment(root: Path, **trainer: Any) -> Path:
    return tiny_experiment(root, tiny_videos(root / "videos"), experiment="identity",
                           trainer={"early_stopping": {"patience": None}, **trainer})


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """(experiment.yaml, run folder): fold 0 finished, fold 1 stopped after its first of 2 epochs,
    then made "older"; each test works on its own copy."""
    root = tmp_path_factory.mktemp("identity")
    path = experiment(root, epochs=2)
    site = root / "site"
    site.mkdir()
    write_distribution(site, "fvctest-stopper", {"fvctest_stopper": STOPPER}, {"stopper": "fvctest_stopper"})
    sys.path.insert(0, str(site))
    clear_cache()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.delenv("MLFLOW_TRACKING_URI", raising=False)
            assert main(["run", str(path), "trackers=[console,duckdb,mlflow,stopper]"]) == 130
    finally:
        sys.path.remove(str(site))
        sys.modules.pop("fvctest_stopper", None)
        clear_cache()
    run_dir = root / "out" / "naive_cnn"
    assert (run_dir / "fold_0/metrics.json").exists() and (run_dir / "fold_1/last.pt").exists()
    assert not (run_dir / "fold_1/metrics.json").exists()
    return path, run_dir, make_older(run_dir)


def copy(interrupted, tmp_path) -> tuple[Path, Path, str, str]:
    path, run_dir, (old, new) = interrupted
    out = tmp_path / "out"
    shutil.copytree(run_dir.parent, out)  # copy2: the files keep their modification times
    return path, out / "naive_cnn", old, new


def files(fold_dir: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(fold_dir.iterdir())}


def test_fvc_run_resumes_a_folder_made_before_a_key_existed(interrupted, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    path, run_dir, old, new = copy(interrupted, tmp_path)
    fold_0 = files(run_dir / "fold_0")
    run_id = json.loads((run_dir / "run.json").read_text())["run_id"]

    assert main(["run", str(path), f"output_dir={run_dir.parent}", TRACKERS]) == 0
    out = capsys.readouterr().out
    assert "resuming a run made before trainer.aggregation, trainer.top_k existed" in out
    assert "same experiment" in out
    assert files(run_dir / "fold_0") == fold_0  # the finished fold: kept, not trained again
    history = json.loads((run_dir / "fold_1/history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    assert history[0]["train_loss"] == MARK  # fold 1 went on from the older fvc's last.pt
    assert (run_dir / "fold_1/metrics.json").exists()

    # The run now records the new hash (and the older one its checkpoints may carry).
    state = json.loads((run_dir / "run.json").read_text())
    assert (state["status"], state["run_id"], state["config_hash"]) == ("finished", run_id, new)
    assert state["earlier_config_hashes"] == [old]
    assert load_config(path, [f"output_dir={run_dir.parent}"]).hash() == new
    stored = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert stored["trainer"]["aggregation"] == "mean_logits" and older_hash(stored) == new
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["config_hash"] == new and [f["fold"] for f in summary["folds"]] == [0, 1]
    # The trackers got the resumed run, under the new hash: one run, not a second one.
    with duckdb.connect(str(run_dir.parent / "results.duckdb"), read_only=True) as con:
        assert con.execute("SELECT run_id, config_hash, status FROM runs").fetchall() == [(run_id, new, "finished")]
    client = MlflowClient(f"sqlite:///{run_dir.parent / 'mlflow.db'}")
    parents = client.search_runs(client.search_experiments()[0].experiment_id.split(), "tags.`fvc.role` = 'parent'")
    assert [(p.data.tags["config_hash"], p.info.status) for p in parents] == [(new, "FINISHED")]

    # The next run takes the fast path: nothing to say, nothing trained.
    done = {k: files(run_dir / f"fold_{k}") for k in (0, 1)}
    assert main(["run", str(path), f"output_dir={run_dir.parent}"]) == 0
    out = capsys.readouterr().out
    assert "resuming a run made before" not in out and out.count("finished earlier, kept") == 2
    assert {k: files(run_dir / f"fold_{k}") for k in (0, 1)} == done

    # fold 0's model.pt holds the older config, config.yaml the newer one: the same experiment.
    csv = tmp_path / "scores.csv"
    assert main(["predict", str(run_dir), str(path.parent / "videos/real"), "-o", str(csv)]) == 0
    assert csv.read_text().count("\n") == 7


def test_a_non_default_value_of_the_new_key_is_another_experiment(interrupted, tmp_path, capsys):
    path, run_dir, old, new = copy(interrupted, tmp_path)
    before = {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()}
    assert main(["run", str(path), f"output_dir={run_dir.parent}", "trainer.top_k=5"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"holds a run of another config (hash {old}" in err and "it differs in trainer.top_k" in err
    assert "pass --fresh" in err
    # Nothing of the older run was rewritten.
    assert {p: p.read_bytes() for p in sorted(run_dir.rglob("*")) if p.is_file()} == before


def test_an_edited_config_yaml_or_a_dropped_key_is_another_experiment(interrupted, tmp_path, capsys):
    path, run_dir, old, _ = copy(interrupted, tmp_path)
    stored = yaml.safe_load((run_dir / "config.yaml").read_text())
    # config.yaml edited after the run (its hash no longer run.json's): not trusted.
    (run_dir / "config.yaml").write_text(yaml.safe_dump({**stored, "seed": 4}))
    assert main(["run", str(path), f"output_dir={run_dir.parent}", "seed=4"]) == 2
    assert "holds a run of another config" in capsys.readouterr().err
    # A key the older version had that this one has not: another experiment, named.
    dropped = {**stored, "trainer": {**stored["trainer"], "mixup": 0.2}}
    (run_dir / "config.yaml").write_text(yaml.safe_dump(dropped))
    state = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**state, "config_hash": older_hash(dropped)}))
    assert main(["run", str(path), f"output_dir={run_dir.parent}"]) == 2
    assert "it differs in trainer.mixup" in capsys.readouterr().err


def test_defaults_come_from_each_sections_config_model(tmp_path):
    path = experiment(tmp_path)
    # min_epochs=1: how every fvc before the key ran (LEGACY), so the section is as the older one ran it.
    config = load_config(path, ["trainer.early_stopping.patience=5", "trainer.early_stopping.min_epochs=1"])
    now = config.as_dict()
    older = json.loads(json.dumps(now))
    del older["trainer"]["early_stopping"]  # a whole nested section at its defaults...
    del older["trainer"]["lr_schedule"]
    found = compare(older, now, Defaults.of(config))
    assert found.same and found.filled == ("trainer.early_stopping", "trainer.lr_schedule")
    # ...but not once one of its values is not the default (patience: null in the experiment).
    config = load_config(path)
    found = compare(older, config.as_dict(), Defaults.of(config))
    assert found.differs == ("trainer.early_stopping",) and not found.same
    # A key no model gives a default for (the plugin's name) is never taken as a default.
    no_name = json.loads(json.dumps(now))
    del no_name["model"]["name"]
    assert compare(no_name, now, Defaults.of(config)).differs == ("model.name",)
    # Read back from plain data (fvc predict): the same defaults, from the installed plugins.
    assert compare(older, now, Defaults.from_registry(now)).filled == ("trainer.early_stopping", "trainer.lr_schedule")


def test_fvc_sweep_keeps_a_finished_point_an_older_fvc_made(tmp_path):
    path = experiment(tmp_path)
    assert main(["sweep", str(path), "trainer.lr=1.0e-3,5.0e-4", "--name", "s"]) == 0
    folder = tmp_path / "out" / "s"
    points = sorted(p for p in folder.iterdir() if (p / "run.json").exists())
    assert len(points) == 2
    for point in points:
        make_older(point)
    before = {p.name: files(p / "fold_0") for p in points}

    from fvc_core.console import get_console

    console = get_console()
    with console.capture() as captured:
        assert main(["sweep", str(path), "trainer.lr=1.0e-3,5.0e-4", "--name", "s"]) == 0
    out = captured.get()
    assert out.count("finished earlier, kept") == 2, out
    assert {p.name: files(p / "fold_0") for p in points} == before

    # Grown by a key that did not vary before: the older folders keep their points (ids of old).
    with console.capture() as captured:
        assert main(["sweep", str(path), "trainer.lr=1.0e-3,5.0e-4", "model.chunk_size=2,4", "--name", "s"]) == 0
    out = captured.get()
    assert out.count("finished earlier, kept") == 2, out
    assert {p.name: files(p / "fold_0") for p in points} == before
    assert len([p for p in folder.iterdir() if (p / "run.json").exists()]) == 4


def test_a_key_whose_default_behaves_otherwise_is_compared_with_how_the_older_fvc_ran(tmp_path):
    """early_stopping.min_epochs came with a default (half the epochs) that keeps other epochs than the
    versions before it (every epoch a candidate): a folder without the key resumed under the default
    would finish its folds under two rules. Only min_epochs=1, how the older fvc ran, is that run."""
    path = experiment(tmp_path)
    config = load_config(path)
    older = config.as_dict()
    del older["trainer"]["early_stopping"]["min_epochs"]
    found = compare(older, config.as_dict(), Defaults.of(config))
    assert found.differs == ("trainer.early_stopping.min_epochs",)
    as_ran = load_config(path, ["trainer.early_stopping.min_epochs=1"])
    found = compare(older, as_ran.as_dict(), Defaults.of(as_ran))
    assert found.same and found.filled == ("trainer.early_stopping.min_epochs",)
