"""Hook implementations of fvc-faces: the built-in ``opencv-haar`` face detector.

Nothing heavy is imported here (no cv2): the factory imports it when a prepare run builds the detector.
"""

from __future__ import annotations

from typing import Any

from fvc_core.contract import hookimpl


def _haar() -> Any:
    from fvc_faces.haar import HaarDetector

    return HaarDetector()


@hookimpl
def register_face_detectors(register):
    """Read by fvc_faces.detectors from every enabled plugin module (no core hookspec needed)."""
    register("opencv-haar", _haar,
             description="OpenCV's frontal-face Haar cascade (weights inside opencv-python-headless)")
