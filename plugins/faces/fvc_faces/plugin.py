"""Hook implementations of fvc-faces: the built-in face detectors ``opencv-haar`` and ``mtcnn``.

Nothing heavy is imported here (no cv2, no torch): a factory imports it when a prepare run builds it.
"""

from __future__ import annotations

from typing import Any

from fvc_core.contract import hookimpl


def _haar() -> Any:
    from fvc_faces.haar import HaarDetector

    return HaarDetector()


def _mtcnn() -> Any:
    from fvc_faces.mtcnn_detector import MTCNNDetector

    return MTCNNDetector()


@hookimpl
def register_face_detectors(register):
    """Read by fvc_faces.detectors from every enabled plugin module (no core hookspec needed)."""
    register("opencv-haar", _haar,
             description="OpenCV's frontal-face Haar cascade (weights inside opencv-python-headless)")
    register("mtcnn", _mtcnn,
             description="MTCNN boxes and five landmarks, in torch (CPU or GPU), weights inside the mtcnn package")
