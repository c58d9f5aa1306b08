"""``--face-align``: each frame's face warped by a similarity transform onto a canonical five-point face.

The canonical face is DeepfakeBench's (``preprocessing/preprocess.py``, ``img_align_crop``): the
five-point template of ArcFace's 112 x 112 crops (eyes, nose tip, mouth corners), moved 8 px right to
centre it in a square, scaled to the output size, then drawn in by the scale (1.3 there, ``1 + margin``
here, 0.3 by default): the face fills 1/1.3 of the crop and 30 % of context surrounds it. The transform
(rotation, uniform scale, shift: no shear, so the face keeps its shape) is the least-squares fit of the
frame's five smoothed landmarks onto the template (scikit-image's ``SimilarityTransform``, Umeyama's
closed form: no random sampling, so the same landmarks give the same crop bit for bit).
"""

from __future__ import annotations

import numpy as np

# ArcFace's template in a 112 x 112 crop (x, y): the eye on the picture's left, the other eye, the nose
# tip, the mouth corner on the left, the other one: the order of the detectors' landmarks.
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]])
TEMPLATE = "arcface 112x112 five points, DeepfakeBench img_align_crop"


def canonical(size: int, scale: float) -> np.ndarray:
    """The five template points in a ``size`` x ``size`` crop at ``scale`` (1.3: DeepfakeBench's)."""
    # DeepfakeBench starts from ArcFace's points 8 px to the left ((x - 8) for a 96 x 112 crop) and
    # adds the 8 back for a 112 x 112 one: ARCFACE_112 as is.
    points = ARCFACE_112 * (size / 112)
    margin = size * (scale - 1) / 2
    return (points + margin) * (size / (size + 2 * margin))


def matrix(landmarks: np.ndarray, size: int, scale: float) -> np.ndarray:
    """The 2 x 3 matrix taking a frame's five landmarks (5, 2) onto the canonical face."""
    from skimage.transform import SimilarityTransform

    src = np.asarray(landmarks, dtype=float).reshape(5, 2)
    dst = canonical(size, scale)
    if hasattr(SimilarityTransform, "from_estimate"):  # scikit-image >= 0.26
        transform = SimilarityTransform.from_estimate(src, dst)
        if not transform:
            raise ValueError(f"no similarity transform for landmarks {src.tolist()}")
    else:  # pragma: no cover - older scikit-image
        transform = SimilarityTransform()
        if not transform.estimate(src, dst):
            raise ValueError(f"no similarity transform for landmarks {src.tolist()}")
    return transform.params[:2]


def warp(frame: np.ndarray, landmarks: np.ndarray, size: int, scale: float) -> np.ndarray:
    """The aligned ``size`` x ``size`` crop of ``frame`` (RGB uint8); outside the frame black."""
    import cv2

    return cv2.warpAffine(np.ascontiguousarray(frame), matrix(landmarks, size, scale), (size, size),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
