"""FaceForensics++: ``original_sequences/youtube/<comp>/videos/071.mp4``,
``manipulated_sequences/<method>/<comp>/videos/071_054.mp4`` (target 071, source 054) and the official
``splits/{train,val,test}.json`` (lists of pairs ``["071", "054"]``, copied from the FF++ repository).

A video's split is that of the identities it shows; one whose identities are in no split file, or in
two, is a problem, as is a fake whose original (the target, same compression) is absent.
The target is the video a fake is made from: ``000_003.mp4`` is original 000's frames with 003's face
swapped in, so its ``source`` (the table's ``source_video``) is ``000.mp4``.
``original_sequences/actors`` and ``manipulated_sequences/DeepFakeDetection`` are the DFD layout's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from fvc_loaders.layouts.common import compression_folders, read_json, videos_in
from fvc_loaders.layouts.registry import Video

SPLITS = ("train", "val", "test")
REAL_SOURCE = "youtube"
NOT_FFPP = {"DeepFakeDetection"}  # shipped in the same download, indexed by --layout dfd
_REAL = re.compile(r"^(\d{3})$")
_FAKE = re.compile(r"^(\d{3})_(\d{3})$")


def read_splits(root: Path, problems: list[str]) -> dict[str, str]:
    """identity -> split from splits/*.json; problems for a missing or malformed file or an identity twice."""
    where: dict[str, str] = {}
    for split in SPLITS:
        path = root / "splits" / f"{split}.json"
        data = read_json(path, root, problems)
        if data is None:
            continue
        rel = path.relative_to(root).as_posix()
        if not isinstance(data, list):
            problems.append(f"{rel}: expected a list of pairs like [\"071\", \"054\"], got {type(data).__name__}")
            continue
        for i, pair in enumerate(data):
            # As FF++ ships them: two distinct three-digit ids, the two people of a swap (071_054, 054_071).
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(x, str) and _REAL.match(x)
                                                                     for x in pair) and pair[0] != pair[1]):
                problems.append(f"{rel}: item {i} is {json.dumps(pair)}, not a pair of two different "
                                "three-digit identities like [\"071\", \"054\"]")
                continue
            for identity in pair:
                earlier = where.setdefault(identity, split)
                if earlier != split:
                    problems.append(f"{rel}: identity {identity!r} is also in splits/{earlier}.json")
    return where


def read(root: Path) -> tuple[list[Video], list[str]]:
    problems: list[str] = []
    # path, label, identities, method, comp, the original the fake is made from
    found: list[tuple[Path, str, tuple[str, ...], str, str, Path | None]] = []
    real_dir = root / "original_sequences" / REAL_SOURCE
    for comp in compression_folders(real_dir):
        for path in videos_in(comp / "videos"):
            m = _REAL.match(path.stem)
            if not m:
                problems.append(f"{path.relative_to(root)}: not an FF++ original name (three digits, like 071.mp4)")
                continue
            found.append((path, "real", (m[1],), REAL_SOURCE, comp.name, None))
    manipulated = root / "manipulated_sequences"
    methods = sorted(p for p in manipulated.iterdir() if p.is_dir() and p.name not in NOT_FFPP) \
        if manipulated.is_dir() else []
    for method in methods:
        for comp in compression_folders(method):
            for path in videos_in(comp / "videos"):
                m = _FAKE.match(path.stem)
                if not m:
                    problems.append(f"{path.relative_to(root)}: not an FF++ fake name "
                                    "(target_source, like 071_054.mp4)")
                    continue
                original = real_dir / comp.name / "videos" / f"{m[1]}{path.suffix}"
                if not original.is_file():
                    problems.append(f"{path.relative_to(root)}: its original "
                                    f"{original.relative_to(root)} is absent")
                    original = None
                found.append((path, "fake", (m[1], m[2]), method.name, comp.name, original))
    if not found:
        problems.append(f"no videos in original_sequences/{REAL_SOURCE}/<c0|c23|c40>/videos or "
                        "manipulated_sequences/<method>/<c0|c23|c40>/videos")
        return [], problems

    split_of = read_splits(root, problems)
    videos = []
    for path, label, ids, method, comp, source in found:
        splits = {split_of[i] for i in ids if i in split_of}
        missing = [i for i in ids if i not in split_of]
        if missing:
            problems.append(f"{path.relative_to(root)}: in no split (identity {', '.join(missing)} "
                            "is in none of splits/train.json, val.json, test.json)")
            continue
        if len(splits) > 1:
            problems.append(f"{path.relative_to(root)}: its identities {', '.join(ids)} are in different "
                            f"splits ({', '.join(sorted(splits))})")
            continue
        videos.append(Video(path, label, ids, method, comp, splits.pop(), source))
    return videos, problems
