"""From a layout's videos to fvc's table: identity groups, paths relative to the table, all problems at once."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fvc_core.contract import UserError
from fvc_loaders.layouts.registry import Layout, Video

if TYPE_CHECKING:
    import polars as pl

# source_video: a fake's original (the video its frames come from) as a video_path of the same table.
COLUMNS = ("video_path", "label", "group", "method", "compression", "split", "source_video")
MAX_PROBLEM_LINES = 30  # a wrong root can give a line per video: the first lines and a count say enough


def identity_groups(videos: Sequence[Video]) -> list[str]:
    """Each video's group: the connected component of the identities it involves (union-find).

    Two videos that share an identity, even through a chain of fakes (071_054, 054_071, 054...),
    share a group, so a group split never puts one person's face on both sides.
    """
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for video in videos:
        first, *rest = video.identities
        root = find(first)
        for other in rest:
            other_root = find(other)
            if other_root != root:
                parent[other_root] = root
    members: dict[str, list[str]] = {}
    for identity in parent:
        members.setdefault(find(identity), []).append(identity)
    names = {}
    for root, ids in members.items():
        ids.sort()
        # The smallest member names the component uniquely; big components are not spelled out.
        names[root] = "+".join(ids) if len(ids) <= 3 else f"{ids[0]}+{len(ids) - 1} more"
    return [names[find(v.identities[0])] for v in videos]


def problem_error(root: Path, layout: str, problems: Iterable[str]) -> UserError:
    lines = [f"{root}: --layout {layout}: {p}" for p in problems]
    if len(lines) > MAX_PROBLEM_LINES:
        rest = len(lines) - MAX_PROBLEM_LINES
        lines = lines[:MAX_PROBLEM_LINES] + [f"{root}: --layout {layout}: ... and {rest} more problems"]
    return UserError("\n".join(lines) + f"\n{root}: no table written")


def left_out(root: Path, videos: Sequence[Video]) -> list[str]:
    """The video files under ``root`` (as plain ``fvc index`` finds them: hidden ones aside) that are not
    among ``videos``, relative to ``root``: a layout reads only its own folders, and what it passes over
    must be said, not dropped in silence (a subfolder of Celeb-real/, FF++'s masks/, a c30/ folder...)."""
    from fvc_loaders.index import find_videos

    taken = {os.path.abspath(v.path) for v in videos}
    return [p.relative_to(root).as_posix() for p in find_videos(root) if os.path.abspath(p) not in taken]


def left_out_summary(paths: Sequence[str], shown: int = 5) -> str:
    """``a/b.mp4, 12 in c/d/, ...``: each folder's video by name when it is the only one, else a count."""
    folders: dict[str, list[str]] = {}
    for path in paths:
        folders.setdefault(path.rpartition("/")[0], []).append(path)
    parts = [files[0] if len(files) == 1 else f"{len(files)} in {folder or '.'}/"
             for folder, files in sorted(folders.items())]
    return ", ".join(parts[:shown]) + (f" and {len(parts) - shown} more folders" if len(parts) > shown else "")


def build_layout_table(layout: Layout, root: str | Path, output: str | Path) -> tuple[pl.DataFrame, list[str]]:
    """The table of ``root`` read as ``layout``, and the videos under ``root`` it left out (``left_out``);
    a UserError with every problem (one line each) instead of a partial table. ``video_path`` is relative
    to ``output``'s folder, like ``fvc index``."""
    import polars as pl

    root = Path(root)
    if not root.is_dir():
        raise UserError(f"{root}: not a folder")
    videos, problems = layout.read(root)
    bad = [v for v in videos if v.label not in ("real", "fake") or not v.identities]
    problems = list(problems) + [f"{v.path}: layout gave label {v.label!r} and identities {v.identities!r}"
                                 for v in bad]
    # A source must be a row of this table (fvc prepare --faces looks it up by video_path); one that
    # is not (a plugin layout pointing outside its own videos) would pair a fake with nothing in silence.
    taken = {os.path.abspath(v.path) for v in videos}
    problems += [f"{v.path}: its source video {v.source} is not a video of the layout" for v in videos
                 if v.source is not None and os.path.abspath(v.source) not in taken]
    if not videos and not problems:
        problems.append("no videos found where this layout keeps them (see docs/datasets.md)")
    if problems:
        raise problem_error(root, layout.name, problems)
    videos = sorted(videos, key=lambda v: str(v.path))
    base = Path(os.path.abspath(output)).parent
    # Keyed by full path: FF++ reuses file names (000_003.mp4) under every method folder.
    def relative(path: Path) -> str:
        return Path(os.path.relpath(os.path.abspath(path), base)).as_posix()

    paths = [relative(v.path) for v in videos]
    table = pl.DataFrame({
        "video_path": paths,
        "label": [v.label for v in videos],
        "group": identity_groups(videos),
        "method": [v.method for v in videos],
        "compression": [v.compression for v in videos],
        "split": [v.split for v in videos],
        "source_video": [relative(v.source) if v.source is not None else None for v in videos],
    }, schema={c: pl.String for c in COLUMNS})
    return table, left_out(root, videos)
