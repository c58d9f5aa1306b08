"""``fvc predict``: the mean fake score of new videos over a finished run's fold models.

The run is read by ``fvc_core.finished_run`` (its names are kept here for older imports).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fvc_core.errors import UserError
from fvc_core.finished_run import (  # noqa: F401  (re-exported: the reader's names before it moved)
    VIDEO_SUFFIXES,
    RunFolds,
    expand_videos,
    fold_dirs,
    fold_number,
    load_fold_model,
    open_run,
    read_run_config,
    run_folds,
    score_videos,
)
from fvc_core.output_file import OutputKind, check_output, write_output

SCORES = OutputKind("predict", "scores of fvc predict")
"""What ``fvc predict -o`` writes: it replaces only its own earlier scores, never a table of the user's or
fvc index's (a run's training table)."""


def run_command(args: argparse.Namespace) -> int:
    from rich.table import Table

    from fvc_core.console import get_console

    output = Path(args.output) if args.output else None
    if output is not None:
        if output.suffix.lower() not in (".csv", ".json", ".parquet"):
            raise UserError(f"-o {output}: use a .csv, .json or .parquet file name")
        check_output(output, SCORES)  # before minutes of scoring, not after
    run = open_run(args.run_dir)
    folds = run.run_folds
    if (partial := folds.warning()) is not None:
        print(f"warning: {partial}", file=sys.stderr)
    frame = run.score(args.videos, device=args.device)
    console = get_console()
    table = Table(title=f"{args.run_dir}: mean fake score over {len(folds.used)} fold model(s)")
    table.add_column("video", overflow="fold")
    table.add_column("score", justify="right")
    table.add_column("prediction")
    for rec in frame.iter_rows(named=True):
        score = f"{rec['score']:.4f}" if rec["score"] is not None else "-"
        table.add_row(rec["video_path"], score, rec["prediction"] or f"[yellow]skipped: {rec['error']}[/]")
    console.print(table)
    if output is not None:
        suffix = output.suffix.lower()
        write = {".csv": frame.write_csv, ".json": frame.write_json}.get(suffix, frame.write_parquet)
        write_output(output, write, SCORES)
        console.print(f"scores written to {output}")
    return 0
