"""Celeb-DF (v2): ``Celeb-real/id0_0000.mp4``, ``Celeb-synthesis/id0_id16_0000.mp4`` (id0's video with
id16's face), ``YouTube-real/00170.mp4`` and ``List_of_testing_videos.txt`` (lines ``1 YouTube-real/00170.mp4``,
1 = real, 0 = synthesised): listed videos are the official test split, the others train.
"""

from __future__ import annotations

import re
from pathlib import Path

from fvc_loaders.layouts.common import videos_in
from fvc_loaders.layouts.registry import Video

TEST_LIST = "List_of_testing_videos.txt"
FOLDERS = {"Celeb-real": "real", "YouTube-real": "real", "Celeb-synthesis": "fake"}
_CELEB_REAL = re.compile(r"^(id\d+)_\d+$")
_SYNTHESIS = re.compile(r"^(id\d+)_(id\d+)_(\d+)$")
_YOUTUBE = re.compile(r"^\d+$")


def _test_list(root: Path, problems: list[str]) -> dict[str, str]:
    """relative path -> label ('real'/'fake') of every line of the official test list; a path listed twice
    with two labels is a problem (the second would silently win)."""
    path = root / TEST_LIST
    if not path.is_file():
        problems.append(f"{TEST_LIST}: missing (the official test split of Celeb-DF v2)")
        return {}
    listed: dict[str, str] = {}
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in ("0", "1"):
            problems.append(f"{TEST_LIST}:{number}: expected '1 Celeb-real/id0_0000.mp4' (1 real, 0 synthesised), "
                            f"got {line.strip()!r}")
            continue
        label = "real" if parts[0] == "1" else "fake"
        if listed.setdefault(parts[1], label) != label:
            problems.append(f"{TEST_LIST}:{number}: lists {parts[1]} as {parts[0]}, "
                            "but an earlier line lists it with the other label")
    return listed


def read(root: Path) -> tuple[list[Video], list[str]]:
    problems: list[str] = []
    videos: list[Video] = []
    listed = _test_list(root, problems)
    for folder, label in FOLDERS.items():
        for path in videos_in(root / folder):
            rel = path.relative_to(root).as_posix()
            stem = path.stem
            source = None  # a fake's original: id0_id16_0000 is id0_0000's frames with id16's face
            if folder == "Celeb-real" and (m := _CELEB_REAL.match(stem)):
                ids: tuple[str, ...] = (m[1],)
            elif folder == "Celeb-synthesis" and (m := _SYNTHESIS.match(stem)):
                ids = (m[1], m[2])
                original = root / "Celeb-real" / f"{m[1]}_{m[3]}{path.suffix}"
                if not original.is_file():
                    problems.append(f"{rel}: its original Celeb-real/{original.name} is absent")
                else:
                    source = original
            elif folder == "YouTube-real" and _YOUTUBE.match(stem):
                ids = (f"YouTube-real/{stem}",)  # unrelated people: each video is its own identity
            else:
                problems.append(f"{rel}: not a Celeb-DF v2 name for {folder}")
                continue
            split = "train"
            if rel in listed:
                split = "test"
                if listed.pop(rel) != label:
                    said = "real (1)" if label == "fake" else "synthesised (0)"
                    problems.append(f"{TEST_LIST}: lists {rel} as {said}, but it is in {folder}")
            videos.append(Video(path, label, ids, folder, None, split, source))
    problems += [f"{TEST_LIST}: lists {rel}, which is " + (
        f"not a video of the layout (not directly in {', '.join(FOLDERS)})" if (root / rel).is_file() else "absent")
        for rel in sorted(listed)]
    return videos, problems
