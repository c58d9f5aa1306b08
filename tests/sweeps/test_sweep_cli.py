"""`fvc sweep` with the instant fake plugins of tests/core: bad input refused before anything is
written, points as ordinary owned run folders with the hash of the same `fvc run`, growth runs only
the new points."""

from __future__ import annotations

import json

import yaml

from fvc_core.cli import main
from tests.builders import write_distribution
from tests.core.conftest import MODEL_PLUGIN


def sweep(capsys, *args):
    code = main(["sweep", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.strip()]


def test_bad_input_is_one_line_each_exit_2_and_nothing_written(events, config, tmp_path, capsys):
    out = tmp_path / "out"
    # An unknown key is the same mistake at every point: said once.
    code, _, err = sweep(capsys, config, "trainer.craash=true,false")
    assert code == 2 and len(errors(err)) == 1 and "trainer.craash: unknown key (did you mean 'crash'?)" in err
    # An empty value in a comma list, and an empty list in the YAML.
    code, _, err = sweep(capsys, config, "trainer.folds=1,")
    assert code == 2 and len(errors(err)) == 1 and "empty value" in err
    data = yaml.safe_load(config.read_text())
    empty = tmp_path / "empty.yaml"
    empty.write_text(yaml.safe_dump({**data, "sweep": {"grid": {"trainer.folds": []}}}))
    code, _, err = sweep(capsys, empty)
    assert code == 2 and errors(err) == [f"error: {empty}: sweep.grid.trainer.folds: an empty list; give at "
                                         "least one value"]
    # A value invalid for one point only: named by that point's id.
    code, _, err = sweep(capsys, config, "trainer.folds=1,many")
    assert code == 2 and len(errors(err)) == 1 and "point folds=many: trainer.folds:" in err
    # More than 10,000 points without --yes: refused before 10,100 configs are even built.
    code, _, err = sweep(capsys, config, "trainer.folds=" + ",".join(map(str, range(1, 102))),
                         "trainer.burst=" + ",".join(map(str, range(100))))
    assert code == 2 and errors(err) == ["error: the sweep has 10,100 points, more than 10,000: pass --yes to "
                                         "run them all"]
    # Nothing varied at all.
    code, _, err = sweep(capsys, config, "trainer.folds=2")
    assert code == 2 and "nothing to sweep" in err and len(errors(err)) == 1
    assert not out.exists() and events == []


def test_a_plugin_choosing_sweep_validates_each_point_against_its_own_plugin(events, site, config, tmp_path, capsys):
    write_distribution(site, "fvctest-m2", {"fvctest_m2": MODEL_PLUGIN.format(name="m2")}, {"m2": "fvctest_m2"})
    # width is a key of m2's config model, not of m's: the point model=m is the one at fault.
    code, _, err = sweep(capsys, config, "model.name=m,m2", "model.width=3")
    assert code == 2 and len(errors(err)) == 1 and "point model=m: model.width: unknown key" in err
    assert not (tmp_path / "out").exists()
    code, out, err = sweep(capsys, config, "model.name=m,m2")
    assert code == 0, err
    assert [e for e in events if e[0] == "model"] == [("model", "a model"), ("model", ("built", 4))]
    assert sorted(p.name for p in (tmp_path / "out" / "e").iterdir() if p.is_dir()) == ["model=m", "model=m2"]


def test_points_are_owned_run_folders_with_the_hash_of_the_same_run_and_growth_runs_only_new_points(
        events, config, tmp_path, capsys):
    data = yaml.safe_load(config.read_text())
    # A sweep: section (and the sweep's folder) are no part of what a point measures.
    config.write_text(yaml.safe_dump({**data, "sweep": {"name": "grow", "grid": {"trainer.folds": [1, 2]}}}))
    code, out, err = sweep(capsys, config)
    assert code == 0, err
    folder = tmp_path / "out" / "grow"
    assert json.loads((folder / ".fvc-owned").read_text())["fvc"] == "sweep"
    for folds in (1, 2):
        run_dir = folder / f"folds={folds}"
        assert json.loads((run_dir / ".fvc-owned").read_text())["fvc"] == "run"
        state = json.loads((run_dir / "run.json").read_text())
        assert state["status"] == "finished"
        plain = tmp_path / "plain.yaml"  # the same experiment without a sweep: section
        plain.write_text(yaml.safe_dump(data))
        assert main(["check", str(plain), f"trainer.folds={folds}"]) == 0
        assert f"(config hash {state['config_hash']})" in capsys.readouterr().out
    assert [e[1] for e in events if e[0] == "start"] == [False, False]
    ranking = json.loads((folder / "sweep.json").read_text())["ranking"]
    assert sorted(r["point"] for r in ranking) == ["folds=1", "folds=2"]

    # Growth: a third value runs the new point alone; the finished ones are kept as they are.
    events.clear()
    code, out, err = sweep(capsys, config, "trainer.folds=1,2,3")
    assert code == 0, err
    assert "point folds=1: finished earlier, kept" in out and "point folds=2: finished earlier, kept" in out
    assert [e for e in events if e[0] == "start"] == [("start", False)]
    assert json.loads((folder / "folds=3" / "run.json").read_text())["status"] == "finished"
    assert sorted(r["point"] for r in json.loads((folder / "sweep.json").read_text())["ranking"]) == [
        "folds=1", "folds=2", "folds=3"]

    # A key that varies since (burst) renames no folder: the point whose config a folder holds keeps it.
    events.clear()
    code, out, err = sweep(capsys, config, "trainer.folds=1", "trainer.burst=0,1")
    assert code == 0, err
    assert "point folds=1: finished earlier, kept" in out
    assert (folder / "burst=1").is_dir() and not (folder / "burst=0").exists()
    assert len([e for e in events if e[0] == "start"]) == 1


def test_fvc_check_refuses_a_malformed_sweep_section_in_one_line_each(events, config, tmp_path, capsys):
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**data, "sweep": {"grdi": {}, "random": {
        "points": 0, "keys": {"trainer.folds": {"normal": [0, 1]}}}}}))
    assert main(["check", str(config)]) == 2
    lines = errors(capsys.readouterr().err)
    assert len(lines) == 3, lines
    assert any("sweep.grdi:" in line for line in lines)
    assert any("sweep.random.points:" in line for line in lines)
    assert any("sweep.random.keys: trainer.folds: give one of {uniform" in line for line in lines)


def test_fvc_check_validates_the_points_of_a_sweep_section(events, config, tmp_path, capsys):
    # A typo'd key or a bad value in the grid is found by `fvc check`, not when `fvc sweep` starts.
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**data, "sweep": {"grid": {"trainer.foldz": [1, 2]}}}))
    assert main(["check", str(config)]) == 2
    assert errors(capsys.readouterr().err) == [f"error: {config}: trainer.foldz: unknown key (did you mean 'folds'?)"]
    config.write_text(yaml.safe_dump({**data, "sweep": {"grid": {"trainer.folds": [1, "many"]}}}))
    assert main(["check", str(config)]) == 2
    assert "point folds=many: trainer.folds:" in capsys.readouterr().err
    config.write_text(yaml.safe_dump({**data, "sweep": {"grid": {"trainer.folds": [1, 2]}}}))
    assert main(["check", str(config)]) == 0
    assert "# sweep: section: 2 points, each valid" in capsys.readouterr().out
    assert main(["check", str(config), "trainer.folds=3"]) == 0  # the one point the command line fixes
    assert "# sweep:" not in capsys.readouterr().out
    assert not (tmp_path / "out").exists() and events == []


def test_a_point_that_crashes_is_recorded_and_the_others_still_run(events, config, tmp_path, capsys):
    code, out, err = sweep(capsys, config, "trainer.crash=true,false")
    assert code == 1
    assert "point crash=true failed: RuntimeError: trainer crashed" in out
    folder = tmp_path / "out" / "e"
    assert json.loads((folder / "crash=true" / "run.json").read_text())["status"] == "failed"
    assert json.loads((folder / "crash=false" / "run.json").read_text())["status"] == "finished"
    ranking = {r["point"]: r["status"] for r in json.loads((folder / "sweep.json").read_text())["ranking"]}
    assert ranking == {"crash=true": "failed", "crash=false": "finished"}


def test_relative_paths_are_taken_as_fvc_run_takes_them(events, config, tmp_path, capsys, monkeypatch):
    # output_dir in the YAML is taken from the YAML's folder, wherever fvc is started.
    data = yaml.safe_load(config.read_text())
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "exp.yaml").write_text(yaml.safe_dump({**data, "output_dir": "runs"}))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out, err = sweep(capsys, exp / "exp.yaml", "trainer.folds=1,2", "--name", "rel")
    assert code == 0, err
    assert sorted(p.name for p in (exp / "runs" / "rel").glob("folds=*")) == ["folds=1", "folds=2"]
    assert list(elsewhere.iterdir()) == []


def test_points_of_one_config_or_a_key_given_twice_are_refused(events, config, tmp_path, capsys):
    # The same value twice (as written, or as YAML reads it) would train one run twice and rank the
    # copies as two seeds of it; a key of the sweep: section changes no run at all.
    for word in ("trainer.folds=2,2", "trainer.burst=1,1.0", "sweep.name=x,y"):
        code, _, err = sweep(capsys, config, word)
        assert code == 2 and len(errors(err)) == 1 and "are one config (hash " in err, (word, err)
    # A list and a single value of one key: the single value was dropped without a word.
    code, _, err = sweep(capsys, config, "trainer.folds=1,2", "trainer.folds=3")
    assert code == 2 and errors(err) == ["error: sweep 'trainer.folds=3': trainer.folds is also swept "
                                         "(trainer.folds=...,...); give it once, as a list or one value"]
    assert not (tmp_path / "out").exists() and events == []


def test_the_ranking_holds_each_value_as_the_run_used_it(events, config, tmp_path, capsys):
    # YAML reads '2' (as 1e-3) as text that the config model turns into a number: sweep.parquet's
    # column is the number the run used, so it sorts and filters as one.
    import polars as pl

    code, _, err = sweep(capsys, config, "trainer.folds='2','10'")
    assert code == 0, err
    table = pl.read_parquet(tmp_path / "out" / "e" / "sweep.parquet")
    assert table.schema["trainer.folds"] == pl.Float64
    assert sorted(table["trainer.folds"].to_list()) == [2.0, 10.0]
    points = json.loads((tmp_path / "out" / "e" / "sweep.json").read_text())["points"]
    assert sorted(p["values"]["trainer.folds"] for p in points.values()) == [2, 10]


def test_an_experiment_name_with_spaces_asks_for_a_sweep_name(events, config, tmp_path, capsys):
    code, _, err = sweep(capsys, config, "experiment=my exp", "trainer.folds=1,2")
    assert code == 2 and errors(err) == [f"error: {config}: the sweep's folder is named after the experiment, "
                                         "'my exp', which holds characters other than letters, digits, '.', '_' "
                                         "and '-': give --name (or sweep.name)"]
    code, _, err = sweep(capsys, config, "experiment=my exp", "trainer.folds=1,2", "--name", "mine")
    assert code == 0, err
    assert (tmp_path / "out" / "mine" / "folds=2" / "run.json").is_file()
