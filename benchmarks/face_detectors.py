"""Recall, precision and speed of the face detectors, side by side, on real photographs' faces.

    .venv/bin/python benchmarks/face_detectors.py [--frames 8] [--detectors opencv-haar,mtcnn]

The frames are tests/faces/photos.py's: three real photographs shipped by scikit-image and matplotlib
(a frontal face, a head turned about 60 degrees, a frontal face with glasses), their face boxes marked by
hand, put in VGA frames (640x480) as a camera panning and zooming over them (``camera``), and the same
photographs perturbed synthetically: tilted -45 to 45 degrees, turned by a perspective warp, darkened
with noise, shrunk to 28-48 px faces. ``--frames`` frames per photograph and set.

Recall: the frames where a detection lies on the marked face (``photos.hit``: centre within a third of
the face's side, size within half to twice). Precision: the faces found (one detection each; a second
detection on the same face counts as a false one) over all detections.
Speed: frames per second on one core (torch and OpenCV limited to one thread), ``detect`` frame by frame,
and for a detector with ``detect_batch`` also 16 frames at a time; all detectors on the same frames, one
after the other per set.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=8, help="frames per photograph and set")
    parser.add_argument("--detectors", default="opencv-haar,mtcnn")
    parser.add_argument("--sets", default="camera,tilted,turned,dark,small")
    args = parser.parse_args()

    import cv2
    import torch
    from fvc_faces.detectors import build_detector

    from tests.faces.photos import frames, hit

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    detectors = {name: build_detector(name) for name in args.detectors.split(",")}
    for name, detector in detectors.items():
        print(f"{name}: {detector.version}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread; OpenCV {cv2.__version__}, "
          f"{cv2.getNumThreads()} thread; {args.frames} frames per photograph and set, 640x480")
    print(" set    | detector    | recall         | precision      | frames/s per core | batched (16)")
    totals: dict[str, list[int]] = {name: [0, 0, 0, 0] for name in detectors}
    for kind in args.sets.split(","):
        data = list(frames(kind, args.frames))
        for name, detector in detectors.items():
            start = time.perf_counter()
            found = [detector.detect(picture) for _, picture, _ in data]
            single = len(data) / (time.perf_counter() - start)
            batched = ""
            if hasattr(detector, "detect_batch"):
                start = time.perf_counter()
                detector.detect_batch([picture for _, picture, _ in data])
                batched = f"{len(data) / (time.perf_counter() - start):6.1f}"
            hits = sum(any(hit(b, face) for b in boxes) for (_, _, face), boxes in zip(data, found, strict=True))
            right = hits  # one detection per face counts as right; a second one on it is a false one
            total = sum(len(boxes) for boxes in found)
            for k, v in enumerate((hits, len(data), right, total)):
                totals[name][k] += v
            print(f" {kind:6} | {name:11} | {hits:3}/{len(data):<3} {hits / len(data):5.0%} "
                  f"| {right:3}/{total:<3} {right / max(total, 1):5.0%} | {single:17.1f} | {batched}")
    for name, (hits, frames_, right, total) in totals.items():
        print(f" all    | {name:11} | {hits:3}/{frames_:<3} {hits / frames_:5.0%} | {right:3}/{total:<3} "
              f"{right / max(total, 1):5.0%} |")


if __name__ == "__main__":
    main()
