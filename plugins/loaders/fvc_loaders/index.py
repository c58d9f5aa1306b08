"""``fvc index DIR -o metadata.parquet``: a metadata table from a folder of videos.

By default a video's label is the name of a folder above it: ``real`` or
``fake`` (any case, at any depth below DIR). ``--label-dir fake=Deepfakes,FaceSwap``
names other folders; ``--label-rule fake=REGEX`` matches the path relative to
DIR instead. A video that matches no rule is listed and left out; one that
matches both labels is an error.

``--layout ffpp|celebdf|dfdc|dfd`` (or a layout a plugin adds) reads a dataset's own folders and split
files instead, and adds ``group``, ``method``, ``compression`` and ``split`` (fvc_loaders.layouts).
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fvc_core.contract import OutputKind, UserError, check_output, write_atomic, write_output

if TYPE_CHECKING:
    import polars as pl

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")
LABELS = ("real", "fake")
_LABEL_WORDS = {"real": "real", "0": "real", "fake": "fake", "1": "fake"}


@dataclass(frozen=True)
class LabelRule:
    """``label`` for every video whose path relative to the indexed folder matches ``pattern``."""

    label: str
    pattern: re.Pattern[str]

    def matches(self, relative: str) -> bool:
        return self.pattern.search(relative) is not None


def _split_rule(text: str, option: str) -> tuple[str, str]:
    label, sep, rest = text.partition("=")
    word = _LABEL_WORDS.get(label.strip().lower())
    if not sep or word is None or not rest:
        raise UserError(f"{option} {text!r}: expected LABEL=VALUE with LABEL real, fake, 0 or 1")
    return word, rest


def dir_rule(text: str) -> LabelRule:
    """``fake=Deepfakes,FaceSwap``: videos under a folder of one of these names (any case, any depth)."""
    label, names = _split_rule(text, "--label-dir")
    alternatives = "|".join(re.escape(n.strip()) for n in names.split(",") if n.strip())
    return LabelRule(label, re.compile(rf"(^|/)({alternatives})/", re.IGNORECASE))


def regex_rule(text: str) -> LabelRule:
    """``fake=manipulated/``: videos whose relative path (with ``/`` separators) matches the regex."""
    label, pattern = _split_rule(text, "--label-rule")
    try:
        return LabelRule(label, re.compile(pattern))
    except re.error as exc:
        raise UserError(f"--label-rule {text!r}: invalid regular expression ({exc})") from None


DEFAULT_RULES = (dir_rule("real=real"), dir_rule("fake=fake"))


def find_videos(root: Path) -> list[Path]:
    """Every file under ``root`` with a video extension, sorted, hidden files and folders left out."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(folder) / f for f in sorted(files)
                  if f.lower().endswith(VIDEO_EXTENSIONS) and not f.startswith(".")]
    return found


def build_index(
    root: str | Path, output: str | Path, rules: Sequence[LabelRule] = DEFAULT_RULES
) -> tuple[pl.DataFrame, list[str]]:
    """The table (``video_path`` relative to ``output``'s folder, ``label`` real/fake) and the unlabelled videos."""
    import polars as pl

    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: not a folder")
    videos = find_videos(root)
    if not videos:
        raise UserError(f"{root}: no videos found (looked for {', '.join(VIDEO_EXTENSIONS)} files)")
    # abspath, not resolve: a symlinked dataset folder stays addressed through its link.
    base = Path(os.path.abspath(output)).parent
    paths, labels, unlabelled = [], [], []
    for video in videos:
        relative = video.relative_to(root).as_posix()
        found = {rule.label for rule in rules if rule.matches(relative)}
        if len(found) > 1:
            raise UserError(f"{video}: matches both real and fake label rules; make the rules exclusive")
        if not found:
            unlabelled.append(relative)
            continue
        paths.append(Path(os.path.relpath(os.path.abspath(video), base)).as_posix())
        labels.append(found.pop())
    if not paths:
        how = "; ".join(f"{r.label}: {r.pattern.pattern}" for r in rules)
        raise UserError(f"{root}: {len(videos)} videos found but none has a label ({how}); "
                        "use real/ and fake/ folders, --label-dir or --label-rule")
    return pl.DataFrame({"video_path": paths, "label": labels}), unlabelled


LAYOUT_KEY = "fvc_layout"  # Parquet key-value metadata: which layout made the table (fvc evaluate records it)


def table_layout(path: str | Path) -> str | None:
    """The layout ``fvc index --layout`` recorded in the table (kept by ``fvc prepare``), if it made it."""
    import polars as pl

    try:
        return pl.read_parquet_metadata(path).get(LAYOUT_KEY)
    except Exception:  # a table fvc did not make may have no such metadata, or be no Parquet: no layout
        return None


def write_table(table: pl.DataFrame, output: str | Path, metadata: dict[str, str] | None = None, *,
                kind: OutputKind | None = None) -> Path:
    """Write atomically, so that a table on disk is always complete: CSV for a ``.csv`` name (as
    ``-o table.csv`` asks; Parquet bytes under that name would open as garbage elsewhere), else Parquet.
    With ``kind`` it is a command's ``-o`` (``write_output``: only that command's earlier table is
    replaced); without, a file in a folder fvc owns (``fvc prepare``'s tables)."""
    output = Path(output)
    if output.suffix.lower() == ".csv":
        if metadata:  # the layout that made a table is Parquet metadata, which CSV cannot hold
            raise UserError(f"-o {output}: a --layout table records its layout in Parquet metadata; name it .parquet")
        content = table.write_csv
    else:
        def content(tmp: Path) -> None:
            table.write_parquet(tmp, metadata=metadata)
    if kind is not None:
        return write_output(output, content, kind)
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, content, per_process=True)
    return output


INDEX = OutputKind("index", "a table of fvc index")
"""``fvc index -o``: a re-index replaces its own earlier table, never a file of anyone else's."""


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder", help="folder of videos; labels come from real/ and fake/ folders by default")
    parser.add_argument("-o", "--output", default="metadata.parquet",
                        help="table to write; video paths are stored relative to its folder (default: %(default)s)")
    parser.add_argument("--label-dir", action="append", default=[], metavar="LABEL=NAME[,NAME...]",
                        help="videos under a folder of one of these names get LABEL (real/fake/0/1); repeatable")
    parser.add_argument("--label-rule", action="append", default=[], metavar="LABEL=REGEX",
                        help="videos whose path relative to FOLDER matches REGEX get LABEL; repeatable")
    parser.add_argument("--layout", metavar="NAME",
                        help="read FOLDER as a dataset's own layout and split files: ffpp, celebdf, dfdc, dfd, "
                             "or one a plugin adds (docs/datasets.md); adds group, method, compression, split")


def _run_layout(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from fvc_core.contract import get_console
    from fvc_loaders.layouts import build_layout_table, get_layout
    from fvc_loaders.layouts.table import left_out_summary

    if args.label_dir or args.label_rule:
        raise UserError("--layout takes labels from the dataset's layout; leave out --label-dir and --label-rule")
    if Path(args.output).suffix.lower() == ".csv":
        raise UserError(f"-o {args.output}: a --layout table records its layout in Parquet metadata; name it .parquet")
    layout = get_layout(args.layout, getattr(args, "disabled", ()))
    check_output(args.output, INDEX)  # before reading a dataset's folders, not after
    table, skipped = build_layout_table(layout, args.folder, args.output)
    path = write_table(table, args.output, metadata={LAYOUT_KEY: layout.name}, kind=INDEX)
    console = get_console()
    counts = dict(table["label"].value_counts().iter_rows())
    splits = ", ".join(f"{n} {s or 'no split'}" for s, n in sorted(
        table["split"].value_counts().iter_rows(), key=lambda r: str(r[0])))
    groups = table["group"].value_counts()
    console.print(f"{escape(str(path))}: {table.height} videos ({counts.get('real', 0)} real, "
                  f"{counts.get('fake', 0)} fake) of layout {layout.name}; {groups.height} identity groups; "
                  f"splits: {escape(splits)}; methods: {escape(', '.join(sorted(table['method'].unique())))}")
    if skipped:
        console.print(f"[yellow]warning:[/] left out {len(skipped)} video{'s' if len(skipped) > 1 else ''} under "
                      f"{escape(str(args.folder))} that layout {layout.name} does not read: "
                      f"{escape(left_out_summary(skipped))}")
    largest = int(groups["count"].max())
    if largest * 2 > table.height:
        advice = ("train with the table's official split column instead" if table["split"].is_not_null().any()
                  else "the dataset defines no split: use it whole, as a test set")
        console.print(f"[yellow]warning:[/] one identity group holds {largest} of {table.height} videos (fakes "
                      f"swap faces between many people): k-fold by group cannot balance it; {advice}")
    console.print("Train on it with data.metadata set to this table (its `group` column is used), so that no "
                  "identity straddles a split.")
    return 0


def run_command(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from fvc_core.contract import get_console

    if args.layout:
        return _run_layout(args)
    rules = [dir_rule(r) for r in args.label_dir] + [regex_rule(r) for r in args.label_rule]
    check_output(args.output, INDEX)
    table, unlabelled = build_index(args.folder, args.output, rules or DEFAULT_RULES)
    path = write_table(table, args.output, kind=INDEX)
    console = get_console()
    counts = dict(table["label"].value_counts().iter_rows())
    console.print(f"{escape(str(path))}: {table.height} videos "
                  f"({counts.get('real', 0)} real, {counts.get('fake', 0)} fake)")
    if len(counts) < 2:
        console.print("[yellow]warning:[/] only one class found; training needs both real and fake videos")
    if unlabelled:
        shown = ", ".join(unlabelled[:5]) + (" ..." if len(unlabelled) > 5 else "")
        console.print(f"[yellow]warning:[/] left out {len(unlabelled)} videos that match no label rule: "
                      f"{escape(shown)}")
    return 0
