"""DFDC: ``dfdc_train_part_N/metadata.json`` mapping each file name of the part to
``{"label": "FAKE"|"REAL", "split": ..., "original": "abc.mp4"|null}``. Group: the original (a real
video is its own), so a fake never lands on the other side of a split from the video it was made from.
"""

from __future__ import annotations

from pathlib import Path

from fvc_loaders.layouts.common import read_json, videos_in
from fvc_loaders.layouts.registry import Video

PART_GLOB = "dfdc_train_part_*"
SPLITS = ("train", "val", "test")  # the training parts say "train"; a split fvc would not know is refused


def read(root: Path) -> tuple[list[Video], list[str]]:
    problems: list[str] = []
    parts = sorted(p for p in root.glob(PART_GLOB) if p.is_dir())
    if not parts:
        return [], [f"no {PART_GLOB} folders (each with its metadata.json)"]
    entries: list[tuple[Path, str, dict]] = []  # part, file name, entry
    real_names: dict[str, Path] = {}  # file name of a REAL -> its path (its part)
    for part in parts:
        meta = read_json(part / "metadata.json", root, problems)
        if meta is None:
            continue
        where = f"{part.name}/metadata.json"
        if not isinstance(meta, dict):
            problems.append(f"{where}: expected an object mapping file names to entries")
            continue
        on_disk = {p.name for p in videos_in(part)}
        for name in sorted(on_disk - set(meta)):
            problems.append(f"{part.name}/{name}: in no metadata.json entry (no label, no split)")
        for name, entry in sorted(meta.items()):
            if not isinstance(entry, dict) or entry.get("label") not in ("REAL", "FAKE"):
                problems.append(f"{where}: {name}: label must be \"REAL\" or \"FAKE\", got {entry!r}")
                continue
            if entry.get("split") is not None and entry["split"] not in SPLITS:
                problems.append(f"{where}: {name}: split must be one of {', '.join(SPLITS)} (or absent), "
                                f"got {entry['split']!r}")
                continue
            if entry["label"] == "REAL" and entry.get("original") is not None:
                problems.append(f"{where}: {name}: a REAL entry with an original ({entry['original']!r}); "
                                "only a FAKE is made from one")
                continue
            if name not in on_disk:
                problems.append(f"{where}: lists {name}, which is absent from {part.name}/")
                continue
            entries.append((part, name, entry))
            if entry["label"] == "REAL":
                real_names[name] = part / name
    videos = []
    for part, name, entry in entries:
        split = entry.get("split")
        split = str(split) if split is not None else None
        if entry["label"] == "REAL":
            videos.append(Video(part / name, "real", (name,), "original", None, split))
            continue
        original = entry.get("original")
        if not isinstance(original, str) or original not in real_names:
            problems.append(f"{part.name}/{name}: a fake whose original {original!r} is absent "
                            "(no REAL entry of that name in any part)")
            continue
        videos.append(Video(part / name, "fake", (original,), "DFDC", None, split, real_names[original]))
    return videos, problems
