"""What ``--face-frames N`` saves: the detect pass of ``fvc prepare --faces`` on every frame against on
the frames a run with ``data.num_frames N`` reads (and their smoothing windows), side by side.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/face_frames.py [--seconds 10] [--read 8,32] \
        [--detectors opencv-haar,mtcnn]

One H.264 clip at 30 fps, 640x480, of ``--seconds`` (a DFDC video is 10 s) with a real face
(scikit-image's astronaut, tests/faces/videos.py) drifting and growing. Per detector: the detect pass
(``fvc_faces.prepare.detect_video``: decode, detect, track, smooth, write the boxes) in this process on
one core (torch and OpenCV on one thread), every frame, then ``--face-frames N`` for each N of
``--read``; frames checked, seconds, and the ratio to every frame.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--read", default="8,32", help="data.num_frames values, comma-separated")
    parser.add_argument("--detectors", default="opencv-haar,mtcnn")
    args = parser.parse_args()

    import cv2
    import torch
    from fvc_faces.prepare import FaceSettings, _get_detector, detect_video

    from tests.faces.videos import face_video, moving

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    frames = round(30 * args.seconds)
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "a.mp4"
        face_video(video, moving(frames, (220, 250, 240), (420, 230, 300)), width=640, height=480, fps=30)
        print(f"{frames} frames, 640x480, 30 fps; detect pass on one core")
        print(" detector    | frames read      | frames checked | seconds | ratio")
        for detector in args.detectors.split(","):
            base = None
            _get_detector(detector)  # built once per worker process in prepare: not timed
            for read in [None, *(int(n) for n in args.read.split(","))]:
                target = Path(tmp) / f"{detector}-{read}.json"
                start = time.perf_counter()
                reason = detect_video(FaceSettings(detector=detector, frames=read), (str(video), str(target)))
                took = time.perf_counter() - start
                assert reason is None, reason
                checked = json.loads(target.read_text())["frames_checked"]
                base = base or took
                label = "every frame" if read is None else f"--face-frames {read}"
                print(f" {detector:11} | {label:16} | {checked:14} | {took:7.1f} | {took / base:5.2f}")


if __name__ == "__main__":
    main()
