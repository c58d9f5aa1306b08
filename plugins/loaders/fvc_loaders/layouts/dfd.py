"""DeepFakeDetection (Google/Jigsaw, shipped with FF++):
``original_sequences/actors/<comp>/videos/01__exit_phone_room.mp4`` and
``manipulated_sequences/DeepFakeDetection/<comp>/videos/01_02__exit_phone_room__YVGY8LOK.mp4``
(actor 01's scene with actor 02's face). No official split: ``split`` is left empty.
"""

from __future__ import annotations

import re
from pathlib import Path

from fvc_loaders.layouts.common import compression_folders, videos_in
from fvc_loaders.layouts.registry import Video

_REAL = re.compile(r"^(\d+)__(.+)$")
_FAKE = re.compile(r"^(\d+)_(\d+)__(.+)__([A-Za-z0-9]+)$")


def read(root: Path) -> tuple[list[Video], list[str]]:
    problems: list[str] = []
    videos: list[Video] = []
    actors = root / "original_sequences" / "actors"
    for comp in compression_folders(actors):
        for path in videos_in(comp / "videos"):
            m = _REAL.match(path.stem)
            if not m:
                problems.append(f"{path.relative_to(root)}: not a DFD actor video name (like 01__exit_phone_room.mp4)")
                continue
            videos.append(Video(path, "real", (m[1],), "actors", comp.name, None))
    for comp in compression_folders(root / "manipulated_sequences" / "DeepFakeDetection"):
        for path in videos_in(comp / "videos"):
            m = _FAKE.match(path.stem)
            if not m:
                problems.append(f"{path.relative_to(root)}: not a DFD fake name "
                                "(like 01_02__exit_phone_room__YVGY8LOK.mp4)")
                continue
            original = actors / comp.name / "videos" / f"{m[1]}__{m[3]}{path.suffix}"
            if not original.is_file():
                problems.append(f"{path.relative_to(root)}: its original {original.relative_to(root)} is absent")
                continue
            # The first actor's scene is the video the fake is made from.
            videos.append(Video(path, "fake", (m[1], m[2]), "DeepFakeDetection", comp.name, None, original))
    if not videos and not problems:
        problems.append("no videos in original_sequences/actors/<c0|c23|c40>/videos or "
                        "manipulated_sequences/DeepFakeDetection/<c0|c23|c40>/videos")
    return videos, problems
