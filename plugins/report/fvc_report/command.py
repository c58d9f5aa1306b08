"""Command lines of `fvc report` and `fvc explain`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fvc_core.contract import UserError


def configure_report(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="<output_dir>/<model name> of an `fvc run`")
    parser.add_argument("-o", "--output", default="report.html",
                        help="the HTML file to write (default report.html); an existing file is replaced only "
                             "when it is an earlier fvc report")
    parser.add_argument("--no-samples", action="store_true", help="leave out sample frames (no video decoding)")
    parser.add_argument("--explain", metavar="VIDEO", default=None,
                        help="add per-frame scores and Grad-CAM maps of VIDEO from the first run's fold models")


def run_report(args: argparse.Namespace) -> int:
    from fvc_core.contract import get_console
    from fvc_report.report import summary_line, write_report

    output = Path(args.output)
    if output.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"-o {output}: use a .html file name")
    # A partial run is reported (what exists), and said so in one line, as fvc predict and evaluate say it.
    write_report(args.run_dirs, output, samples=not args.no_samples, explain_video=args.explain,
                 warn=lambda line: print(f"warning: {line}", file=sys.stderr))
    get_console().print(summary_line(output))
    return 0


def configure_explain(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="<output_dir>/<model name> of an `fvc run`")
    parser.add_argument("video", metavar="VIDEO", help="the video to explain")
    parser.add_argument("-o", "--output", default="explain", metavar="DIR",
                        help="folder for the PNGs (default ./explain; made if missing)")
    parser.add_argument("--frames", type=int, default=4, help="frames shown with Grad-CAM maps (default 4)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")


def run_explain(args: argparse.Namespace) -> int:
    from fvc_core.contract import get_console
    from fvc_report.explain import write_explain

    written = write_explain(Path(args.run_dir), Path(args.video), Path(args.output), frames=args.frames,
                            device=args.device)
    console = get_console()
    for path in written:
        console.print(f"wrote {path}")
    return 0
