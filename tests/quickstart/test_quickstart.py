"""The README's main job, smaller: the quickstart config really learns on real encoded videos."""

import json
import statistics
from pathlib import Path

from fvc_core.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_a_smaller_quickstart_learns_clearly_above_chance(tmp_path, capsys):
    overrides = [
        f"data.root={tmp_path}/data", f"output_dir={tmp_path}/runs",
        "trainer.folds=2", "trainer.epochs=6", "trainer.num_workers=0", "trackers=[]",
    ]
    assert main(["run", str(ROOT / "examples/quickstart.yaml"), *overrides]) == 0
    summary = json.loads((tmp_path / "runs/naive_cnn/summary.json").read_text())
    aucs = [json.loads((tmp_path / f"runs/naive_cnn/fold_{k}/metrics.json").read_text())["roc_auc"] for k in range(2)]
    assert summary["mean"]["roc_auc"] == statistics.mean(aucs)
    # 2 folds of 24 test videos each: chance is 0.5; the synthetic fakes are learnt well above it.
    assert summary["mean"]["roc_auc"] >= 0.8, aucs
    assert "roc_auc" in capsys.readouterr().out  # the fold table was printed
