"""``fvc verify CONFIG_OR_TABLE``: decode every video up front, the way training will, and list the bad ones.

A run finds an unreadable video only when it reaches it, possibly hours in;
this check reads every video first (probe + decode of the sampled frames, in
parallel) and reports each bad one with its reason. ``fvc check`` validates a
config; ``fvc verify`` validates the data behind it.

Exit code 0 when every video reads, or when the config says
``on_bad_video: skip`` (the run will leave the bad ones out); 2 when a bad
video would stop the run.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fvc_core.contract import BadVideoError, OutputKind, UserError, check_output, one_line

TABLE_SUFFIXES = (".parquet", ".pq", ".csv")


@dataclass
class BadVideo:
    video_path: str
    reason: str


def check_video(dataset: Any, path: str) -> str | None:
    """Why ``dataset`` cannot read ``path``, or None when it reads."""
    try:
        clip = dataset.read_video(path)
    except BadVideoError as exc:
        return exc.reason
    except Exception as exc:  # anything read_video lets through would stop training the same way
        return one_line(exc)
    if clip.ndim != 4 or clip.shape[1] != 3:
        return f"decoded to a clip of shape {tuple(clip.shape)}, expected (T, 3, H, W)"
    return None


def verify_dataset(dataset: Any, *, workers: int | None = None) -> tuple[int, list[BadVideo]]:
    """The number of videos checked and the bad ones, in table order."""
    import pickle

    from fvc_loaders.parallel import map_with_progress

    paths = dataset.table()["video_path"].to_list()
    try:
        pickle.dumps(dataset)
    except Exception:  # a third-party dataset that cannot travel to worker processes is checked here
        workers = 0
    bad = {}
    for i, reason in map_with_progress(check_video, dataset, paths, workers=workers, description="verifying"):
        if reason is not None:
            bad[i] = BadVideo(paths[i], reason)
    return len(paths), [bad[i] for i in sorted(bad)]


def dataset_from_table(path: Path, settings: list[str]) -> Any:
    """A ``metadata`` dataset over a table, with ``key=value`` settings of its config (num_frames=32...)."""
    import yaml

    from fvc_core.contract import validate_model
    from fvc_loaders.config import MetadataConfig
    from fvc_loaders.dataset import MetadataDataset

    data: dict[str, Any] = {"metadata": str(path)}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{item!r}: expected key=value, e.g. num_frames=32")
        data[key.removeprefix("data.")] = yaml.safe_load(value)
    return MetadataDataset(validate_model(MetadataConfig, data, "data"))


def dataset_from_config(path: Path, overrides: list[str], disabled: list[str]) -> Any:
    from fvc_core.contract import create_plugin, load_config

    config = load_config(path, overrides, disabled=disabled)
    return create_plugin("datasets", config.data.name, config.data.config, disabled=config.disabled_plugins)


BAD_VIDEOS = OutputKind("verify", "a list of bad videos of fvc verify")
"""``fvc verify -o``: replaces only its own earlier list."""


def write_report(bad: list[BadVideo], output: Path) -> None:
    import polars as pl

    from fvc_loaders.index import write_table

    table = pl.DataFrame({"video_path": [b.video_path for b in bad], "reason": [b.reason for b in bad]},
                         schema={"video_path": pl.String, "reason": pl.String})
    write_table(table, output, kind=BAD_VIDEOS)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="CONFIG_OR_TABLE",
                        help="experiment YAML (its data section) or a Parquet metadata table")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides (data.num_frames=32), or for a table its dataset keys (size=128)")
    parser.add_argument("-j", "--workers", type=int, default=None,
                        help="processes decoding in parallel (default: one per CPU core)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="also write the bad videos (video_path, reason) to this .parquet or .csv file")


def run_command(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from fvc_core.contract import get_console

    source = Path(args.source)
    if args.output is not None:
        check_output(args.output, BAD_VIDEOS)  # before every video is decoded, not after
    if source.suffix.lower() in TABLE_SUFFIXES:
        dataset = dataset_from_table(source, args.overrides)
    else:
        dataset = dataset_from_config(source, args.overrides, getattr(args, "disabled", []))
    checked, bad = verify_dataset(dataset, workers=args.workers)
    if args.output is not None:
        write_report(bad, args.output)

    console = get_console()
    if not bad:
        console.print(f"{escape(str(source))}: all {checked} videos read")
        return 0
    table = Table(title=f"{len(bad)} of {checked} videos cannot be read")
    table.add_column("video")
    table.add_column("reason")
    for b in bad:
        table.add_row(escape(b.video_path), escape(b.reason))
    console.print(table)
    if args.output is not None:
        console.print(f"written to {escape(str(args.output))}")
    if dataset.on_bad_video == "skip":
        console.print("on_bad_video is skip: a run leaves these videos out and reports them")
        return 0
    console.print("on_bad_video is fail: a run would stop at the first of these; "
                  "fix or remove them, or set data.on_bad_video=skip")
    return 2
