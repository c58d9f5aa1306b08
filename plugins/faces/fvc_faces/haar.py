"""The built-in detector: OpenCV's frontal-face Haar cascade (Viola-Jones), weights inside the wheel.

``haarcascade_frontalface_default.xml`` ships in ``cv2.data`` of opencv-python-headless 4.x (Apache 2.0
package; the cascade's own licence is Intel's BSD-style one): nothing is downloaded at run time. It finds
upright frontal faces from about 24 px; profiles and strongly turned heads are missed, which the tracker
bridges for short gaps. A user who needs more brings a CNN detector through the same door (detectors.py).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fvc_faces.detectors import Box

CASCADE = "haarcascade_frontalface_default.xml"
# Pictures are scaled down to this longer side before the cascade runs: its cost grows with the area,
# and a face that matters for a 256 px crop is far larger than the cascade's 24 px window at this size.
DETECT_SIDE = 320
SCALE_FACTOR = 1.1
MIN_NEIGHBOURS = 5
# The smallest face looked for, as a share of the picture's shorter side (and never under 24 px).
MIN_FACE_SHARE = 0.08


class HaarDetector:
    name = "opencv-haar"

    def __init__(self) -> None:
        path = Path(cv2.data.haarcascades) / CASCADE
        self.cascade = cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise RuntimeError(f"{path}: OpenCV's face cascade is missing (opencv-python-headless 4.x ships it)")
        self.version = f"opencv {cv2.__version__} {CASCADE}"

    def detect(self, frame: np.ndarray) -> list[Box]:
        h, w = frame.shape[:2]
        scale = min(1.0, DETECT_SIDE / max(h, w))
        grey = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            grey = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))),
                              interpolation=cv2.INTER_AREA)
        smallest = max(24, round(MIN_FACE_SHARE * min(grey.shape)))
        boxes, _, weights = self.cascade.detectMultiScale3(
            grey, scaleFactor=SCALE_FACTOR, minNeighbors=MIN_NEIGHBOURS, minSize=(smallest, smallest),
            outputRejectLevels=True)
        return [(x / scale, y / scale, (x + bw) / scale, (y + bh) / scale, float(score))
                for (x, y, bw, bh), score in zip(np.asarray(boxes).reshape(-1, 4), np.ravel(weights), strict=True)]
