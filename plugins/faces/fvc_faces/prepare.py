"""``fvc prepare TABLE -o OUT --faces``: face crops of every video, as small videos plus their table.

Two passes over the table, each parallel (one process per video), resumable and with a progress bar,
through ``fvc prepare``'s own machinery:

1. **Boxes**: each video whose boxes are needed is decoded, the detector runs on every ``every``-th
   frame, the detections are linked into tracks, bridged and smoothed (``tracking``), and the result is
   written atomically to ``OUT/.faces/<copy name>.json``: a re-run reads it instead of detecting again.
   With ``same_crop`` a fake whose pairing column names exactly one real video (``source_video``, as
   ``fvc index --layout`` writes it, names the real video itself) takes that video's boxes
   and is not detected itself: real and fake are cut at the same place, so a model cannot learn the crop.
2. **Crops**: each clip is decoded again, cut with its track's square (margin, out-of-frame parts
   black), scaled to ``size`` x ``size`` with the reader's letterbox and encoded like ``fvc prepare``'s
   copies. A video where no face was found follows ``no_face``: ``skip`` (left out of the table, listed
   in ``OUT/no_face_videos.parquet``) or ``full_frame`` (the whole frame, letterboxed).

``OUT/scaled_metadata.parquet`` holds one row per clip with every column of the input table and the
face columns (``FACE_COLUMNS``); ``OUT/prepare.json`` records the encoding and, under ``faces``, the
detector's name and version, the settings and the counts.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# fvc prepare's machinery (reader, encoder, table writer, resumable plan) arrives as ``tools``, a
# fvc_loaders.prepare_tools.PrepareTools handed over by the loaders' prepare_run hook: never imported.
from fvc_core.contract import BadVideoError, UserError, labels_as_classes, write_atomic

BOXES_DIR = ".faces"
NO_FACE_TABLE = "no_face_videos.parquet"
FACE_COLUMNS = ("face_index", "face_crop", "face_boxes_from", "face_frames", "face_frames_checked",
                "face_frames_missing")
MODES = ("largest", "each")
DETECT_BATCH = 16  # checked frames handed to a detector's detect_batch at once
NO_FACE = ("skip", "full_frame")


@dataclass(frozen=True)
class FaceSettings:
    detector: str = "opencv-haar"
    margin: float = 0.3  # the square's side is the face's longer side times (1 + margin)
    smoothing: int = 5  # frames of the centred moving average over the track, odd (1: none)
    every: int = 1  # detect on every N-th frame, interpolate between
    mode: str = "largest"  # or "each": every face its own clip
    no_face: str = "skip"  # or "full_frame"
    same_crop: bool = True  # a fake takes its real video's boxes where the pairing column names one
    pair_column: str | None = None  # default: source_video, else source_id, else group, where the table has it
    align: bool = False  # warp each frame's face onto the canonical five-point face (align.py)
    # Detect only on the frames data.sampler uniform with data.num_frames N reads (sampled.py).
    frames: int | None = None

    def check(self) -> None:
        if not 0 <= self.margin <= 3:
            raise UserError(f"--face-margin {self.margin}: expected a share of the face box from 0 to 3")
        if self.smoothing < 1 or self.smoothing % 2 == 0:
            # Centred: the frame itself and as many frames on each side, so the window is odd.
            raise UserError(f"--face-smoothing {self.smoothing}: expected an odd number of frames "
                            "(a centred window: 1 for none, 3, 5, ...)")
        if self.every < 1:
            raise UserError(f"--face-every {self.every}: expected 1 or more")
        if self.frames is not None and self.frames < 1:
            raise UserError(f"--face-frames {self.frames}: expected 1 or more (data.num_frames of the run)")
        if self.frames is not None and self.every != 1:
            raise UserError(f"--face-frames {self.frames} and --face-every {self.every}: one or the other "
                            "(the frames a run reads, or every N-th frame)")
        if self.mode not in MODES:
            raise UserError(f"--face-mode {self.mode!r}: expected {' or '.join(MODES)}")
        if self.no_face not in NO_FACE:
            raise UserError(f"--face-no-face {self.no_face!r}: expected {' or '.join(NO_FACE)}")


@dataclass
class FacesResult:
    table_path: Path
    clips: int = 0
    written: int = 0
    already_done: int = 0
    detected: int = 0
    no_face: list[str] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)
    # Fakes whose source_video is not a real video of the table: detected on their own, and said so.
    unpaired: list[tuple[str, str]] = field(default_factory=list)


# --- the jobs (module level: they run in spawned worker processes) ------------------------------------

_detector: Any = None


def _get_detector(name: str) -> Any:
    global _detector
    if _detector is None or _detector.name != name:
        from fvc_faces.detectors import build_detector

        _detector = build_detector(name)
    return _detector


def detect_video(state: tuple[FaceSettings, Any], job: tuple[str, str]) -> str | None:
    """Write the boxes file ``job[1]`` of video ``job[0]``; a reason when the video cannot be read."""
    from fvc_faces import tracking

    settings, tools = state
    source, target = job
    detector = _get_detector(settings.detector)
    detections = []
    frames = 0
    width = height = 0
    # A detector with ``detect_batch`` (a network) gets the checked frames a batch at a time.
    batch = getattr(detector, "detect_batch", None)
    pending: list[tuple[int, Any]] = []

    def flush() -> None:
        found = batch([f for _, f in pending]) if batch else [detector.detect(f) for _, f in pending]
        detections.extend((i, boxes) for (i, _), boxes in zip(pending, found, strict=True))
        pending.clear()

    wanted: set[int] | None = None  # with --face-frames: the frames read and their smoothing windows
    if settings.frames:
        from fvc_faces import sampled

        expected = sampled.packet_count(source)
        wanted = set(sampled.frames_to_check(tools, expected, settings.frames, settings.smoothing))

    def detect_where(check: Any) -> None:
        nonlocal frames, width, height
        frames = 0
        for index, frame in enumerate(tools.iter_frames(source)):
            frames += 1
            height, width = frame.shape[:2]
            if check(index):
                pending.append((index, frame))
                if len(pending) >= DETECT_BATCH:
                    flush()
        flush()

    try:
        detect_where(lambda i: i % settings.every == 0 if wanted is None else i in wanted)
        if wanted is not None and frames != expected:
            # The packets were not one frame each: the frames read follow from the frames decoded.
            done = {i for i, _ in detections}
            missing = set(sampled.frames_to_check(tools, frames, settings.frames, settings.smoothing)) - done
            if missing:
                detect_where(lambda i: i in missing)
                detections.sort(key=lambda d: d[0])
    except BadVideoError as exc:
        return exc.reason
    tracks = tracking.keep(tracking.link(detections))
    if settings.mode == "largest":
        tracks = tracks[:1]
    record = {
        "frames": frames, "width": width, "height": height,
        "frames_checked": len(detections),
        "frames_missing": sum(1 for _, boxes in detections if not boxes),
        "tracks": [tracking.path(t, frames, settings.smoothing).round(2).tolist() for t in tracks],
    }
    if settings.align:
        # Smoothed through time like the boxes; rounded like them, so a crop depends on the file alone.
        marks = [tracking.landmarks_path(t, frames, settings.smoothing) for t in tracks]
        record["landmarks"] = [m.round(2).tolist() for m in marks]  # type: ignore[union-attr]
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(target), json.dumps(record))
    return None


def square(box: Any, margin: float) -> tuple[int, int, int]:
    """(x0, y0, side) in whole pixels of the crop around a track's (cx, cy, side)."""
    cx, cy, side = (float(v) for v in box)
    side = max(2, round(side * (1 + margin)))
    return round(cx - side / 2), round(cy - side / 2), side


def cut(frame: Any, x0: int, y0: int, side: int) -> Any:
    """The ``side`` x ``side`` square of ``frame`` at (x0, y0); what lies outside the frame is black."""
    import numpy as np

    h, w = frame.shape[:2]
    out = np.zeros((side, side, 3), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(0, x0), max(0, y0), min(w, x0 + side), min(h, y0 + side)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = frame[sy0:sy1, sx0:sx1]
    return out


class _NoFrames(Exception):
    pass


def crop_video(state: tuple[Any, float, Any, bool], job: tuple[str, str, str, int]) -> str | None:
    """Write clip ``job[1]`` of ``job[0]`` cut along track ``job[3]`` of boxes file ``job[2]`` (with
    ``state[3]``, aligned on the track's landmarks instead)."""
    import numpy as np

    from fvc_faces import align

    encoding, margin, tools, aligned = state
    source, target, boxes_file, index = job
    record = json.loads(Path(boxes_file).read_text())
    boxes = np.asarray(record["tracks"][index], dtype=float)
    marks = np.asarray(record["landmarks"][index], dtype=float) if aligned else None

    def crops() -> Any:
        for i, frame in enumerate(tools.iter_frames(source)):
            # A fake cut with its real video's boxes: same geometry expected; scale if the sizes differ.
            h, w = frame.shape[:2]
            sx = w / record["width"] if record["width"] else 1.0
            sy = h / record["height"] if record["height"] else 1.0
            if marks is not None:
                points = marks[min(i, len(marks) - 1)].reshape(5, 2) * (sx, sy)
                yield align.warp(frame, points, encoding.size, 1 + margin)
                continue
            cx, cy, side = boxes[min(i, len(boxes) - 1)]
            x0, y0, s = square((cx * sx, cy * sy, side * (sx + sy) / 2), margin)
            yield tools.letterbox(cut(frame, x0, y0, s), encoding.size)

    def encode(tmp: Path) -> None:
        # The encoder of fvc prepare's copies: the same crops give the same file, run after run.
        if tools.encode_pictures(tmp, getattr(tools.probe(source), "fps", None), encoding, crops()) == 0:
            raise _NoFrames

    Path(target).parent.mkdir(parents=True, exist_ok=True)
    try:
        write_atomic(Path(target), encode, per_process=True, suffix=".mp4")
    except _NoFrames:
        return "no frame could be decoded"
    except BadVideoError as exc:
        return exc.reason
    return None


def full_frame(encoding: Any, tools: Any, job: tuple[str, str, str, int]) -> str | None:
    reason, _ = tools.scale_video(encoding, (job[0], job[1]))
    return reason


def _clip_job(state: tuple[Any, float, Any, bool], job: tuple[str, str, str, int]) -> str | None:
    """A face clip (index >= 0) or the whole frame (index -1, the no-face fallback)."""
    return full_frame(state[0], state[2], job) if job[3] < 0 else crop_video(state, job)


# --- the table -------------------------------------------------------------------------------------


SOURCE_COLUMN = "source_video"  # fvc index --layout: a fake's original, as a video_path of the same table
PAIR_COLUMNS = (SOURCE_COLUMN, "source_id", "group")  # the default pairing column: the first the table has


def _pairing(raw: Any, settings: FaceSettings, labels: list[int],
             video_column: str) -> tuple[str | None, dict[int, int], list[tuple[int, str]]]:
    """(pairing column, {fake row: real row}, [(fake row, why it is unpaired)]).

    ``source_video`` names the real video itself (its ``video_path``): a fake is paired with that row,
    and one whose source is not a real row of the table (left out of it) is detected on its own and
    listed. Any other column is a shared key: a fake is paired where its value names exactly one real.
    """
    column = settings.pair_column
    if column is None:
        column = next((c for c in PAIR_COLUMNS if c in raw.columns), None)
    elif column not in raw.columns:
        raise UserError(f"--face-pair-column {column!r}: no such column (columns: {', '.join(raw.columns)})")
    if column is None or not settings.same_crop:
        return column, {}, []
    values = raw[column].cast(str).to_list()
    if column == SOURCE_COLUMN:
        row_of = {v: i for i, v in enumerate(raw[video_column].cast(str).to_list())}
        pairs, unpaired = {}, []
        for i, (value, label) in enumerate(zip(values, labels, strict=True)):
            if label != 1 or value is None:
                continue
            j = row_of.get(value)
            if j is not None and labels[j] == 0:
                pairs[i] = j
            else:
                unpaired.append((i, f"its source {value} is not a real video of the table"))
        return column, pairs, unpaired
    reals: dict[str, list[int]] = {}
    for i, (value, label) in enumerate(zip(values, labels, strict=True)):
        if label == 0 and value is not None:
            reals.setdefault(value, []).append(i)
    pairs = {i: reals[v][0] for i, (v, label) in enumerate(zip(values, labels, strict=True))
             if label == 1 and v is not None and len(reals.get(v, [])) == 1}
    return column, pairs, []


def _labels(raw: Any, label_column: str, where: Path) -> list[int]:
    if label_column not in raw.columns:
        raise UserError(f"{where}: no column {label_column!r} (columns: {', '.join(raw.columns)})")
    return labels_as_classes(raw[label_column], {"real": 0, "fake": 1},
                              f"{where}: column {label_column!r}").to_list()


def clip_name(name: Path, index: int, mode: str) -> Path:
    """``fake/a.avi.mp4``; in ``each`` mode ``fake/a.avi.face0.mp4``, ``.face1.mp4``..."""
    if mode == "largest" or index < 0:
        return name
    return name.with_name(f"{name.name[: -len('.mp4')]}.face{index}.mp4")


def prepare_faces(
    table_path: str | Path,
    output_dir: str | Path,
    *,
    tools: Any,
    encoding: Any = None,
    faces: FaceSettings = FaceSettings(),
    on_bad_video: str = "fail",
    video_column: str = "video_path",
    label_column: str = "label",
    workers: int | None = None,
) -> FacesResult:
    """Face crops of every video of ``table_path`` under ``output_dir`` and their table, made with
    ``tools`` (what ``fvc prepare`` lends its steps: ``fvc_loaders.prepare_tools.prepare_tools()``);
    ``encoding``: a ``tools.Encoding``, None for its defaults."""
    import polars as pl

    from fvc_faces.detectors import build_detector

    faces.check()
    encoding = encoding if encoding is not None else tools.Encoding()
    # Built here once, so that an unknown or broken detector is one line before any work.
    detector = build_detector(faces.detector)
    if faces.align and not getattr(detector, "landmarks", False):
        raise UserError(f"--face-align: face detector {faces.detector!r} gives no landmarks "
                        "(--face-detector mtcnn does)")
    raw, sources, out, names = tools.plan_copies(table_path, output_dir, encoding, on_bad_video, video_column)
    table_path = Path(table_path)
    videos = raw[video_column]  # as the table writes them (relative or not): the output table's paths
    labels = _labels(raw, label_column, table_path)
    pair_column, pairs, unpaired = _pairing(raw, faces, labels, video_column)
    recorded = asdict(encoding) | {"faces": asdict(faces) | {
        "detector_version": detector.version, "pair_column": pair_column}}
    # Settings added after face folders existed are recorded only when used, so that a folder made
    # before them (which ran with their defaults) still resumes.
    for key, default in (("align", False), ("frames", None)):
        if recorded["faces"][key] == default:
            del recorded["faces"][key]
    if faces.align:
        from fvc_faces.align import TEMPLATE

        recorded["faces"]["alignment"] = {"template": TEMPLATE, "scale": 1 + faces.margin,
                                          "transform": "similarity, least squares (scikit-image)",
                                          "landmarks_smoothing": faces.smoothing}
    tools.claim(out, recorded)
    tools.remove_stale_partials(out)
    result = FacesResult(out / tools.SCALED_TABLE)
    result.unpaired = [(sources[i], why) for i, why in unpaired]
    box_files = [out / BOXES_DIR / (n.as_posix() + ".json") for n in names]
    # Where each video's boxes come from: its own, or its real video's.
    boxes_of = [pairs.get(i, i) for i in range(len(sources))]
    bad: dict[int, str] = {}

    def fail_or_skip(i: int, reason: str) -> None:
        if on_bad_video == "fail":
            raise BadVideoError(sources[i], f"{reason} (on_bad_video: fail; finished copies are kept, "
                                            "run again to resume)")
        bad[i] = reason

    need = sorted(set(boxes_of))
    todo = [i for i in need if not box_files[i].is_file()]
    result.detected = len(todo)
    # On an executor (Ray), each job's file (its item's [1]) is made on the worker and written here.
    runs = tools.map_with_progress(detect_video, (faces, tools), [(sources[i], str(box_files[i])) for i in todo],
                                   workers=workers, description="finding faces", **_on(tools))
    try:
        for j, reason in runs:
            if reason is not None:
                fail_or_skip(todo[j], reason)
    finally:
        runs.close()

    # One row per clip: (row of the table, face index or -1 for the whole frame, its record).
    clips: list[tuple[int, int, dict[str, Any]]] = []
    no_face_rows: list[tuple[str, int, int]] = []
    seen: dict[int, dict[str, Any]] = {}  # the boxes record of every video read, for the counts
    for i in range(len(sources)):
        owner = boxes_of[i]
        if owner in bad:
            if owner != i:
                bad[i] = f"its real video {sources[owner]} could not be read"
            continue
        record = json.loads(box_files[owner].read_text())
        seen[i] = record
        if record["tracks"]:
            clips.extend((i, k, record) for k in range(len(record["tracks"])))
        elif faces.no_face == "full_frame":
            clips.append((i, -1, record))
        else:
            result.no_face.append(sources[i])
            no_face_rows.append((videos[i], record["frames"], record["frames_checked"]))
    targets = [out / clip_name(names[i], k, faces.mode) for i, k, _ in clips]
    jobs = [(sources[i], str(t), str(box_files[boxes_of[i]]), k) for (i, k, _), t in zip(clips, targets, strict=True)]
    todo = [c for c, t in enumerate(targets) if not t.is_file()]
    result.already_done = len(clips) - len(todo)
    failed: set[int] = set()
    runs = tools.map_with_progress(_clip_job, (encoding, faces.margin, tools, faces.align), [jobs[c] for c in todo],
                                   workers=workers, description="cropping faces", **_on(tools))
    try:
        for j, reason in runs:
            if reason is None:
                result.written += 1
                continue
            i = clips[todo[j]][0]
            fail_or_skip(i, reason)
            failed.add(i)
    finally:
        runs.close()

    rows, extra = [], []
    for (i, k, record), target in zip(clips, targets, strict=True):
        if i in failed:
            continue
        rows.append(i)
        extra.append((target.relative_to(out).as_posix(), max(k, 0), "face" if k >= 0 else "full_frame",
                      videos[boxes_of[i]], record["frames"], record["frames_checked"], record["frames_missing"]))
    result.clips = len(rows)
    result.bad = [(sources[i], reason) for i, reason in sorted(bad.items())]
    columns = (video_column, *FACE_COLUMNS)
    table = raw[rows].with_columns(pl.DataFrame(extra, schema=columns, orient="row"))
    if SOURCE_COLUMN in table.columns:
        # Renamed like video_path, so it still names a row of this table: the source's one clip (a
        # source with none, or with a clip per face, is no single row: null; face_boxes_from keeps the path).
        clips_of: dict[str, list[str]] = {}
        for i, row in zip(rows, extra, strict=True):
            clips_of.setdefault(videos[i], []).append(row[0])
        renamed = [clips_of.get(v, [None, None]) if v is not None else [None, None]
                   for v in table[SOURCE_COLUMN].cast(pl.String).to_list()]
        table = table.with_columns(pl.Series(SOURCE_COLUMN, [r[0] if len(r) == 1 else None for r in renamed],
                                             dtype=pl.String))
    if faces.mode == "each" and "group" not in raw.columns:
        # Two faces of one video are two rows: without a group they could land in different splits.
        # The pairing column's value where there is one (a real video and its fakes together).
        keys = raw[pair_column].cast(pl.String).to_list() if pair_column else [None] * len(sources)
        table = table.with_columns(pl.Series("group", [keys[i] or videos[i] for i in rows], dtype=pl.String))
    _write_side_table(tools, out / tools.BAD_TABLE, result.bad, ["video_path", "reason"])
    _write_side_table(tools, out / NO_FACE_TABLE, no_face_rows, ["video_path", "face_frames", "face_frames_checked"])
    recorded["faces"]["counts"] = {
        "videos": len(sources), "clips": result.clips, "videos_without_face": len(result.no_face),
        "full_frame_clips": sum(1 for r in extra if r[2] == "full_frame"), "bad_videos": len(result.bad),
        # Over every video read (a fake cut with its real video's boxes counts that video's frames).
        "frames_checked": sum(r["frames_checked"] for r in seen.values()),
        "frames_missing": sum(r["frames_missing"] for r in seen.values()),
    }
    if pair_column == SOURCE_COLUMN and faces.same_crop:
        # Fakes whose source video is not a real row of the table: detected on their own.
        recorded["faces"]["counts"]["fakes_without_source"] = len(result.unpaired)
    write_atomic(out / tools.SETTINGS, json.dumps(recorded))
    tools.write_table(table, result.table_path)
    return result


def _on(tools: Any) -> dict[str, Any]:
    """Where the jobs run: ``fvc prepare``'s executor (``--executor ray``), each job's output file at [1]
    of its item; nothing for loaders without executors (the process pool, as before)."""
    executor = getattr(tools, "executor", None)
    return {"executor": executor, "output": 1} if executor is not None else {}


def _write_side_table(tools: Any, path: Path, rows: list[tuple], schema: list[str]) -> None:
    import polars as pl

    if rows:
        tools.write_table(pl.DataFrame(rows, schema=schema, orient="row"), path)
    else:
        path.unlink(missing_ok=True)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The ``--face-*`` options of ``fvc prepare`` (they act only with ``--faces``)."""
    group = parser.add_argument_group("face crops (--faces, plugin fvc-faces)")
    group.add_argument("--faces", action="store_true",
                       help="crop each video around its face instead of letterboxing the whole frame")
    group.add_argument("--face-detector", default="opencv-haar",
                       help="a face detector plugin by name (default: %(default)s)")
    group.add_argument("--face-margin", type=float, default=0.3,
                       help="the crop's side is the face's times 1 + this (default: %(default)s)")
    group.add_argument("--face-smoothing", type=int, default=5,
                       help="frames of the centred moving average over the face's track, odd; 1 for none "
                            "(default: %(default)s)")
    group.add_argument("--face-every", type=int, default=1,
                       help="detect on every N-th frame and interpolate between (default: %(default)s)")
    group.add_argument("--face-mode", choices=MODES, default="largest",
                       help="the largest face, or each face as its own clip (default: %(default)s)")
    group.add_argument("--face-no-face", choices=NO_FACE, default="skip",
                       help="a video without a face: leave it out and list it, or keep its whole frame "
                            "(default: %(default)s)")
    group.add_argument("--face-pair-column", default=None,
                       help="column naming a fake's real video (default: source_video, which fvc index "
                            "--layout writes, else source_id, else group)")
    group.add_argument("--no-face-same-crop", dest="face_same_crop", action="store_false",
                       help="detect faces in the fakes too instead of reusing their real video's boxes")
    group.add_argument("--face-frames", type=int, default=None, metavar="N",
                       help="detect only on the frames a run with data.sampler uniform and data.num_frames N "
                            "reads (and the smoothing window around each); the others are interpolated")
    group.add_argument("--face-align", action="store_true",
                       help="warp each frame's face onto a canonical five-point face (a detector with "
                            "landmarks: --face-detector mtcnn), at scale 1 + --face-margin")
    group.add_argument("--label-column", default="label", help="column of labels (default: %(default)s)")


def run_command(args: argparse.Namespace, tools: Any) -> int:
    from rich.markup import escape

    from fvc_core.contract import get_console

    settings = FaceSettings(args.face_detector, args.face_margin, args.face_smoothing, args.face_every,
                            args.face_mode, args.face_no_face, args.face_same_crop, args.face_pair_column,
                            args.face_align, args.face_frames)
    result = prepare_faces(args.table, args.output, tools=tools,
                           encoding=tools.Encoding(args.size, args.crf, args.preset),
                           faces=settings, on_bad_video=args.on_bad_video, video_column=args.video_column,
                           label_column=args.label_column, workers=args.workers)
    console = get_console()
    console.print(f"{escape(str(result.table_path))}: {result.clips} face clips ({result.written} written, "
                  f"{result.already_done} already done), {len(result.no_face)} videos without a face, "
                  f"{len(result.bad)} bad")
    for path in result.no_face:
        console.print(f"[yellow]no face[/] {escape(path)} (--face-no-face skip)")
    for path, reason in result.bad:
        console.print(f"[yellow]left out[/] {escape(path)}: {escape(reason)}")
    for path, reason in result.unpaired:
        console.print(f"[yellow]own boxes[/] {escape(path)}: {escape(reason)}; detected on its own")
    return 0
