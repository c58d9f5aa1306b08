"""`fvc results` through the real `fvc` command line, over a results file the DuckDB tracker wrote."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("fvc_duckdb", reason="the fvc-duckdb plugin is not installed")
from fvc_duckdb.config import DuckdbConfig  # noqa: E402
from fvc_duckdb.tracker import DuckdbTracker  # noqa: E402

from fvc_core.cli import main  # noqa: E402
from tests.trackers.run_outputs import full_run, make_run  # noqa: E402


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Two runs of two models into experiments/out/results.duckdb; their summaries."""
    root = tmp_path_factory.mktemp("results_cmd")
    out = root / "experiments" / "out"
    summaries = {}
    for model in ("naive_cnn", "other_cnn"):
        run = make_run(out, model=model, folds=3)
        summaries[model] = full_run(DuckdbTracker(DuckdbConfig()), run, epochs=2, checkpoint=False)
    return root, summaries


def fvc(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["results", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_default_shows_the_latest_runs_folds_with_mean_and_std(results, capsys, monkeypatch):
    root, summaries = results
    monkeypatch.chdir(root)  # found two levels down
    code, out, _ = fvc(capsys)
    assert code == 0
    latest = summaries["other_cnn"]
    assert f"run {latest.run.run_id[:12]}" in out and "3/3 folds" in out
    mean_row = next(line for line in out.splitlines() if "mean" in line)
    assert f"{latest.mean['f1_score']:.4f}" in mean_row and f"{latest.mean['roc_auc']:.4f}" in mean_row
    std_row = next(line for line in out.splitlines() if line.strip("│ ").startswith("std"))
    assert f"{latest.std['f1_score']:.4f}" in std_row


def test_a_run_is_picked_by_an_id_prefix(results, capsys):
    root, summaries = results
    first = summaries["naive_cnn"].run.run_id
    code, out, _ = fvc(capsys, "--db", str(root / "experiments" / "out" / "results.duckdb"), "--run", first[:6])
    assert code == 0 and f"run {first[:12]}" in out and "naive_cnn" in out
    code, _, err = fvc(capsys, "--db", str(root), "--run", "zzzz")
    assert code == 2 and "--run zzzz: no such run" in err


def test_runs_side_by_side(results, capsys):
    root, summaries = results
    code, out, _ = fvc(capsys, "--db", str(root), "--runs")
    assert code == 0
    lines = out.splitlines()
    for model, summary in summaries.items():
        at = next(i for i, line in enumerate(lines) if summary.run.run_id[:8] in line)
        row = lines[at] + lines[at + 1]  # a run takes two lines: means, then ± std
        assert model in row and "finished" in row and "3/3" in row
        assert f"{summary.mean['roc_auc']:.3f}" in row and f"±{summary.std['roc_auc']:.3f}" in row


def test_any_sql_including_the_seeds_query(results, capsys):
    root, summaries = results
    code, out, _ = fvc(capsys, "--db", str(root),
                       "SELECT fold, AVG(test_f1) AS avg_f1, STDDEV(test_f1) AS std_f1 FROM results GROUP BY fold "
                       "ORDER BY fold")
    assert code == 0 and "avg_f1" in out and "std_f1" in out
    f1 = [s.folds[0].metrics["f1_score"] for s in summaries.values()]
    assert f"{sum(f1) / 2:.4f}" in out


def test_mistakes_are_one_line_errors(results, capsys, tmp_path):
    root, _ = results
    code, _, err = fvc(capsys, "--db", str(root), "SELECT * FROM nowhere")
    assert code == 2 and err.strip().startswith("error: SQL: Catalog Error") and len(err.strip().splitlines()) == 1
    code, _, err = fvc(capsys, "--db", str(root), "DELETE FROM runs")  # opened read-only
    assert code == 2 and "read-only" in err
    code, _, err = fvc(capsys, "--db", str(tmp_path / "missing"))
    assert code == 2 and "no such file or folder" in err
    code, _, err = fvc(capsys, "--db", str(tmp_path))
    assert code == 2 and "no results.duckdb in" in err
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "results.duckdb").write_bytes((root / "experiments" / "out" / "results.duckdb").read_bytes())
    code, _, err = fvc(capsys, "--db", str(tmp_path))
    assert code == 2 and "several results files" in err


def test_help_and_plugin_listing_leave_mlflow_and_duckdb_unloaded():
    probe = (
        "import sys\n"
        "from fvc_core.cli import main\n"
        "main(['plugins'])\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED', sorted(m for m in ('mlflow', 'duckdb', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120).stdout
    assert "results" in out and "LOADED []" in out
    for name in ("mlflow", "duckdb"):
        assert name in out  # both trackers are listed by `fvc plugins`


def test_a_run_folder_given_as_the_argument_shows_that_run(results, capsys, tmp_path):
    """`fvc results runs/quickstart/naive_cnn`: a path, not SQL; the run's own folds from the results
    file in its output_dir, even when it is not the latest run there."""
    import json

    root, summaries = results
    out = root / "experiments" / "out"
    first = summaries["naive_cnn"].run.run_id
    (out / "naive_cnn" / "run.json").write_text(json.dumps({"run_id": first, "status": "finished"}))
    code, shown, err = fvc(capsys, str(out / "naive_cnn"))
    assert code == 0, err
    assert f"run {first[:12]}" in shown and "naive_cnn" in shown
    code, shown, _ = fvc(capsys, str(out))  # the output_dir itself: its latest run, as --db gives
    assert code == 0 and f"run {summaries['other_cnn'].run.run_id[:12]}" in shown
    # A run that had no duckdb tracker: said in one line, never another run's file found further down.
    alone = tmp_path / "runs" / "timm"
    alone.mkdir(parents=True)
    (alone / "run.json").write_text(json.dumps({"run_id": "abc", "status": "finished"}))
    (tmp_path / "runs" / "other").mkdir()
    (tmp_path / "runs" / "other" / "results.duckdb").write_bytes((out / "results.duckdb").read_bytes())
    code, _, err = fvc(capsys, str(alone))
    assert code == 2 and err.count("\n") == 1 and "an fvc run without a results.duckdb beside it" in err
