"""``fvc prepare TABLE -o OUT``: the scaling stage. Letterbox every video once; train on the small copies.

Each video of the table is decoded frame by frame, letterboxed to size x size
(the reader's own ``iter_letterboxed_frames``, so a copy holds exactly what
training would have computed) and encoded as H.264 (crf 18, yuv420p) under
OUT, keeping its path below the table's folder. ``OUT/scaled_metadata.parquet``
is the same table with ``video_path`` pointing at the copies (relative to OUT).

Resumable: a copy is written under a temporary name and renamed when
complete, so a re-run skips the copies that exist and redoes the rest. Bad
videos follow ``--on-bad-video``: ``fail`` stops at the first (finished copies
are kept), ``skip`` leaves them out of the table and lists them in
``OUT/bad_videos.parquet``.

Where the videos are encoded: a local process pool (``-j``), or the executor a run would use
(``--executor ray [--address HOST:PORT]``, or ``--config experiment.yaml``'s ``executor:`` section), a
Ray task per video whose copy comes back to this process, the one writer of the output folder.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fvc_core.contract import BadVideoError, UserError, ownership, plugin_hooks, write_atomic

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

SCALED_TABLE = "scaled_metadata.parquet"
BAD_TABLE = "bad_videos.parquet"
SETTINGS = "prepare.json"
DEFAULT_FPS = 25.0


# Far above any dataset's frames (DFDC's are 1920 x 1080), below what FFmpeg's scaler accepts.
MAX_SIZE = 4096


@dataclass(frozen=True)
class Encoding:
    size: int = 256
    crf: int = 18
    preset: str = "veryfast"


@dataclass
class PrepareResult:
    table_path: Path
    written: int = 0
    already_done: int = 0
    bad: list[tuple[str, str]] = field(default_factory=list)


def copy_name(source: str, table_dir: Path) -> Path:
    """Where the copy of ``source`` goes, relative to the output folder.

    Below the table's folder the relative path is kept (``fake/a.avi`` ->
    ``fake/a.avi.mp4``: the old suffix stays so ``a.avi`` and ``a.mkv`` cannot
    collide); a video elsewhere goes to ``external/<hash of its path>/``.
    """
    src = Path(source)
    try:
        relative = src.relative_to(table_dir)
    except ValueError:
        digest = hashlib.sha1(str(src).encode()).hexdigest()[:12]
        relative = Path("external") / digest / src.name
    if relative.suffix.lower() != ".mp4":
        relative = relative.with_name(relative.name + ".mp4")
    return _fitting(relative)


COPY_NAME_MAX = 240
"""Bytes of a copy's file name: under the file system's 255, so that names made from it (``--faces``'
``<copy>.json`` and ``<copy>.face1.mp4``) fit too. Names that ever worked were shorter (their temporary
name added a pid), so none of them changes."""


def _fitting(relative: Path) -> Path:
    """``relative``, or where its name passes ``COPY_NAME_MAX`` bytes (a 250-byte ``a.avi`` given ``.mp4``),
    the name cut with ``~`` and a hash of the whole name in place of the cut part."""
    name = relative.name
    if len(os.fsencode(name)) <= COPY_NAME_MAX:
        return relative
    digest = "~" + hashlib.sha256(os.fsencode(name)).hexdigest()[:12] + ".mp4"
    stem = name[: -len(".mp4")]
    while len(os.fsencode(stem + digest)) > COPY_NAME_MAX:  # whole characters: never half a UTF-8 sequence
        stem = stem[:-1]
    return relative.with_name(stem + digest)


def _frame_rate(fps: float | None) -> Fraction:
    if not fps or fps <= 0 or fps != fps:
        fps = DEFAULT_FPS
    # 29.97 -> 30000/1001: keeps NTSC rates exact, which H.264 time bases want.
    return Fraction(fps).limit_denominator(1001)


def add_stream(out: Any, fps: float | None, encoding: Encoding) -> Any:
    """The H.264 stream of a copy in the open MP4 container ``out``, at the source's frame rate."""
    rate = _frame_rate(fps)
    stream = out.add_stream("libx264", rate=rate)
    stream.width = stream.height = encoding.size
    stream.pix_fmt = "yuv420p"
    # Keyframes every ~2 s so that sampling a few frames seeks instead of decoding everything.
    # No B-frames: they make MP4 write an edit list in milliseconds, which shortens the
    # duration by up to a millisecond and moves the sampling targets; and they slow decoding.
    # One encoder thread, as the parallelism is one process per video. No assembly (asm=0): x264's gave
    # different files for the same frames from one encode to the next (docs/data.md); a copy or a face
    # crop must not depend on the run that made it. It costs about a fifth of the encoding time.
    keyint = max(1, round(2 * float(rate)))
    stream.options = {"crf": str(encoding.crf), "preset": encoding.preset, "threads": "1",
                      "x264-params": f"keyint={keyint}:bframes=0:asm=0"}
    return stream


def encode_pictures(path: Path, fps: float | None, encoding: Encoding, pictures: Iterable[np.ndarray]) -> int:
    """Encode RGB pictures (size x size x 3 uint8) as the H.264 MP4 ``path``; how many there were.

    The one encoder of ``fvc prepare``'s copies and face crops: the same pictures give the same file,
    in any process and on a re-run (``fvc_loaders.yuv``: the RGB to YUV conversion is done in numpy)."""
    import av

    from fvc_loaders.yuv import video_frame

    written = 0
    with av.open(str(path), "w", format="mp4") as out:
        stream = add_stream(out, fps, encoding)
        for picture in pictures:
            out.mux(stream.encode(video_frame(picture, written)))
            written += 1
        out.mux(stream.encode(None))
    return written


class _NoFrames(Exception):
    """An encode that decoded nothing: the half-made copy goes, and the video is reported bad."""


def scale_video(encoding: Encoding, job: tuple[str, str]) -> tuple[str, int] | tuple[None, int]:
    """Write the letterboxed copy ``job[1]`` of ``job[0]``: (None, frames) or (reason, 0) for a bad video."""
    from fvc_loaders.reader import iter_letterboxed_frames, probe

    source, target = job
    target_path = Path(target)
    target_path.parent.mkdir(parents=True, exist_ok=True)
    written = 0

    def encode(tmp: Path) -> None:
        nonlocal written
        info = probe(source)
        written = encode_pictures(tmp, getattr(info, "fps", None), encoding,
                                  iter_letterboxed_frames(source, encoding.size))
        if written == 0:
            raise _NoFrames

    try:
        write_atomic(target_path, encode, per_process=True, suffix=".mp4")
    except _NoFrames:
        return "no frame could be decoded", 0
    except BadVideoError as exc:
        return exc.reason, 0
    return None, written


def _prepared_before_markers(out: Path) -> bool:
    """An output folder of ``fvc prepare`` before ``.fvc-owned`` existed: it holds prepare.json."""
    return (out / SETTINGS).is_file()


def settings_of(recorded: Any) -> Any:
    """What of a prepare.json must match for a re-run to resume: all but the counts of what was made."""
    if isinstance(recorded, dict) and isinstance(recorded.get("faces"), dict):
        return recorded | {"faces": {k: v for k, v in recorded["faces"].items() if k != "counts"}}
    return recorded


def claim(out: Path, wanted: dict[str, Any]) -> None:
    """Make OUT ours (new, empty, or prepared before) and record the settings; refuse to mix copies
    made with other settings. A folder of anyone else's is refused: a file of theirs at a copy's
    name would pass for a finished copy, and the tables written here would replace theirs."""
    import json

    ownership.claim(out, ownership.PREPARE, legacy=_prepared_before_markers,
                    way_out="choose a new or empty output folder (-o)")
    settings = out / SETTINGS
    if settings.is_file():
        try:
            found = settings_of(json.loads(settings.read_text()))
        except ValueError:
            found = None
        if found != wanted:
            raise UserError(f"{out}: already holds copies made with {found}, not {wanted}; "
                            "choose another output folder or delete it")
        return
    write_atomic(settings, json.dumps(wanted))


def remove_stale_partials(out: Path) -> None:
    """Half-written copies of workers that were SIGKILLed (``.<name>.<pid>.tmp.mp4``): ours by name, in a
    folder that is ours, and dead by their pid. A live pid is another prepare still writing: left alone."""
    for path in out.rglob(".*.tmp.mp4"):
        pid = path.name[: -len(".tmp.mp4")].rsplit(".", 1)[-1]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def plan_copies(table_path: str | Path, output_dir: str | Path, encoding: Encoding, on_bad_video: str,
                video_column: str) -> tuple[pl.DataFrame, list[str], Path, list[Path]]:
    """The checks every prepare step makes before writing: (the table, its videos' absolute paths, the
    output folder, each copy's name in it); one UserError line for a bad setting or table, or copies
    that would land on their originals."""
    import polars as pl

    from fvc_loaders.dataset import read_table, resolve_paths

    if encoding.size % 2 or encoding.size < 16:
        raise UserError(f"--size {encoding.size}: must be even and at least 16 (H.264 4:2:0)")
    if encoding.size > MAX_SIZE:
        raise UserError(f"--size {encoding.size}: at most {MAX_SIZE} (FFmpeg's scaler refuses larger pictures)")
    if not 0 <= encoding.crf <= 51:
        raise UserError(f"--crf {encoding.crf}: x264's quality scale is 0 (lossless) to 51")
    if on_bad_video not in ("fail", "skip"):
        raise UserError(f"--on-bad-video {on_bad_video!r}: expected fail or skip")
    table_path = Path(table_path)
    raw = read_table(table_path)
    if video_column not in raw.columns:
        raise UserError(f"{table_path}: no column {video_column!r} (columns: {', '.join(raw.columns)})")
    videos = raw[video_column]
    if videos.dtype != pl.String or videos.is_null().any():
        raise UserError(f"{table_path}: column {video_column!r} must hold a path in every row")
    sources = resolve_paths(videos, table_path.parent).to_list()
    if len(set(sources)) != len(sources):
        raise UserError(f"{table_path}: column {video_column!r} lists the same video twice")
    out = Path(output_dir).resolve()
    table_dir = table_path.parent.resolve()
    names = [copy_name(s, table_dir) for s in sources]
    if {str(out / n) for n in names} & set(sources):
        raise UserError(f"{output_dir}: writing the copies there would overwrite the originals; "
                        "choose another output folder")
    return raw, sources, out, names


SOURCE_COLUMN = "source_video"  # fvc index --layout: a fake's original, a video_path of the same table


def follow_sources(scaled: pl.DataFrame, renamed: dict[str, str | None]) -> pl.DataFrame:
    """``source_video`` renamed like ``video_path`` (old path -> the copy's), so it still names a row of
    the new table; a source that is not a row of it (bad, or not in the input table) becomes null."""
    import polars as pl

    if SOURCE_COLUMN not in scaled.columns:
        return scaled
    values = scaled[SOURCE_COLUMN].cast(pl.String).to_list()
    return scaled.with_columns(pl.Series(SOURCE_COLUMN, [renamed.get(v) if v is not None else None
                                                          for v in values], dtype=pl.String))


def prepare(
    table_path: str | Path,
    output_dir: str | Path,
    *,
    encoding: Encoding = Encoding(),
    on_bad_video: str = "fail",
    video_column: str = "video_path",
    workers: int | None = None,
    executor: Any = None,
) -> PrepareResult:
    """Letterboxed copies of every video of ``table_path`` under ``output_dir`` and their table;
    ``executor``: a started one that runs items elsewhere (Ray), else the local process pool."""
    import polars as pl

    from fvc_loaders.index import LAYOUT_KEY, table_layout, write_table
    from fvc_loaders.parallel import map_with_progress

    raw, sources, out, names = plan_copies(table_path, output_dir, encoding, on_bad_video, video_column)
    table_path = Path(table_path)
    targets = [str(out / n) for n in names]

    from dataclasses import asdict

    claim(out, asdict(encoding))
    remove_stale_partials(out)
    result = PrepareResult(out / SCALED_TABLE)
    todo = [i for i, t in enumerate(targets) if not Path(t).is_file()]
    result.already_done = len(sources) - len(todo)
    jobs = [(sources[i], targets[i]) for i in todo]
    bad_rows = set()
    runs = map_with_progress(scale_video, encoding, jobs, workers=workers, description="preparing",
                             executor=executor, output=1)
    try:
        for j, (reason, _frames) in runs:
            if reason is None:
                result.written += 1
                continue
            i = todo[j]
            if on_bad_video == "fail":
                raise BadVideoError(sources[i], f"{reason} (on_bad_video: fail; finished copies are kept, "
                                                 "run again to resume)")
            bad_rows.add(i)
            result.bad.append((sources[i], reason))
    finally:
        runs.close()

    keep = [i not in bad_rows for i in range(len(sources))]
    scaled = raw.with_columns(pl.Series(video_column, [n.as_posix() for n in names]))
    scaled = scaled.filter(pl.Series(keep))
    scaled = follow_sources(scaled, {old: n.as_posix() for old, n, k in zip(raw[video_column].cast(pl.String),
                                                                            names, keep, strict=True) if k})
    bad_path = out / BAD_TABLE
    if result.bad:
        write_table(pl.DataFrame(result.bad, schema=["video_path", "reason"], orient="row"), bad_path)
    else:
        bad_path.unlink(missing_ok=True)
    # The copies are the same dataset: the layout that indexed it stays recorded (the run's protocol reads it).
    layout = table_layout(table_path)
    write_table(scaled, result.table_path, metadata={LAYOUT_KEY: layout} if layout else None)
    return result


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("table", help="Parquet metadata table of the original videos")
    parser.add_argument("-o", "--output", required=True,
                        help=f"folder for the copies and {SCALED_TABLE} (not the table's own folder)")
    parser.add_argument("--size", type=int, default=256, help="letterbox to size x size (default: %(default)s)")
    parser.add_argument("--crf", type=int, default=18, help="H.264 quality, lower is better (default: %(default)s)")
    parser.add_argument("--preset", default="veryfast", help="x264 preset (default: %(default)s)")
    parser.add_argument("--on-bad-video", choices=("fail", "skip"), default="fail",
                        help="stop at the first unreadable video, or leave it out and list it (default: fail)")
    parser.add_argument("--video-column", default="video_path", help="column of video paths (default: %(default)s)")
    parser.add_argument("-j", "--workers", type=int, default=None,
                        help="videos encoded in parallel (default: one per CPU core; on Ray, as many as the "
                             "cluster holds)")
    parser.add_argument("--executor", default=None, metavar="NAME",
                        help="where the videos are encoded: local (a process pool here, the default) or ray "
                             "(a Ray task per video, on the cluster a run uses)")
    parser.add_argument("--address", default=None, metavar="HOST:PORT",
                        help="the Ray cluster (executor.address: host:port, auto, ray://host:port or local)")
    parser.add_argument("--config", default=None, metavar="EXPERIMENT.yaml",
                        help="take the executor from this experiment's executor: section (as fvc run does); "
                             "--executor and --address override it")
    hooks = plugin_hooks()
    if hooks.prepare_add_options.get_hookimpls():  # fvc-faces adds --faces and its --face-* options
        hooks.prepare_add_options(parser=parser)
    else:
        parser.add_argument("--faces", action="store_true", help="face crops (needs the fvc-faces plugin)")


def started_executor(args: argparse.Namespace) -> Any:
    """The executor ``--executor``/``--address``/``--config`` name, started, when it runs the videos
    elsewhere (Ray); None for the local process pool (the default, and ``--executor local``). A wrong
    name, key or address is one line (``fvc run``'s own), before anything is written."""
    from fvc_core.contract import executor_from, maps_items

    if args.executor is None and args.address is None and args.config is None:
        return None  # nothing to look up: the pool, as before executors existed
    if args.workers is not None and args.workers < 1:
        raise UserError(f"-j {args.workers}: expected 1 or more videos at once")
    executor = executor_from(args.config, args.executor, {"address": ("--address", args.address)},
                             disabled=getattr(args, "disabled", []))
    if not maps_items(executor):
        return None
    executor.start()
    return executor


def run_command(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from fvc_core.contract import get_console
    from fvc_loaders.prepare_tools import prepare_tools

    executor = started_executor(args)
    try:
        code = plugin_hooks().prepare_run(args=args, tools=prepare_tools(executor))
        if code is not None:  # a plugin's step ran instead of the copies (fvc-faces, for --faces)
            return code
        if getattr(args, "faces", False):
            raise UserError("--faces needs the fvc-faces plugin: pip install -e plugins/faces")
        result = prepare(
            args.table, args.output,
            encoding=Encoding(args.size, args.crf, args.preset),
            on_bad_video=args.on_bad_video, video_column=args.video_column, workers=args.workers,
            executor=executor,
        )
    finally:
        if executor is not None:
            executor.close()
            # Workers of this machine killed mid-video (Ctrl-C) left their temporary folders: ours by name.
            from fvc_loaders.parallel import remove_dead_workers_folders

            remove_dead_workers_folders()
    console = get_console()
    console.print(f"{escape(str(result.table_path))}: {result.written} videos scaled, "
                  f"{result.already_done} already done, {len(result.bad)} bad")
    for path, reason in result.bad:
        console.print(f"[yellow]left out[/] {escape(path)}: {escape(reason)}")
    if result.bad:
        console.print(f"bad videos listed in {escape(str(result.table_path.parent / BAD_TABLE))}")
    return 0
