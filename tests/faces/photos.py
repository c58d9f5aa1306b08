"""Real photographs of faces that installed packages ship, with their face boxes and eyes marked by hand,
and frames made from them: a camera moving over the photograph, and harder ones (tilted, turned, dark,
small) that are synthetic perturbations of the real photographs, with the marked box carried through the
same transform.

- ``astronaut``: scikit-image's ``data.astronaut()`` (Eileen Collins, NASA, public domain), frontal;
- ``cameraman``: scikit-image's ``data.camera()`` (grey, public domain since 0.19), a head turned about
  60 degrees to the side (a hard case for a frontal detector);
- ``hopper``: matplotlib's ``sample_data/grace_hopper.jpg`` (Grace Hopper, US Navy, public domain),
  frontal, with glasses.

The boxes were read off the photographs enlarged 4x (2.5x for ``hopper``) with a 10 px grid: from cheek
to cheek (ear to nose tip for the turned head) and from the brows' top to the chin. The eyes are the
pupils' centres (the picture's left eye first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Photo:
    name: str
    load: Callable[[], np.ndarray]
    box: tuple[float, float, float, float]  # x0, y0, x1, y1, marked by hand
    eyes: tuple[tuple[float, float], tuple[float, float]] | None  # (x, y) each; None where one is hidden


def _astronaut() -> np.ndarray:
    from skimage.data import astronaut

    return astronaut()


def _cameraman() -> np.ndarray:
    from skimage.data import camera

    return np.repeat(camera()[..., None], 3, axis=2)


def _hopper() -> np.ndarray:
    import matplotlib
    from matplotlib import image

    path = f"{matplotlib.get_data_path()}/sample_data/grace_hopper.jpg"
    return np.ascontiguousarray(image.imread(path)[..., :3])


PHOTOS = (
    Photo("astronaut", _astronaut, (180, 70, 268, 175), ((202.5, 100.7), (246.0, 102.5))),
    Photo("cameraman", _cameraman, (195, 122, 257, 198), None),
    Photo("hopper", _hopper, (168, 150, 362, 330), ((222.0, 192.0), (304.0, 190.0))),
)

Frame = tuple[np.ndarray, tuple[float, float, float]]  # picture, true face (cx, cy, side)

WIDTH, HEIGHT = 640, 480  # the frames' size: VGA, as a webcam's


def _warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.warpAffine(image, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(90, 90, 90))


def place(photo: Photo, image: np.ndarray, *, angle: float = 0.0, side: float = 160.0,
          centre: tuple[float, float] = (WIDTH / 2, HEIGHT / 2)) -> Frame:
    """The photograph scaled so that its face is ``side`` px wide, rotated by ``angle`` degrees
    (counter-clockwise as seen) about the face's centre, put at ``centre`` of a grey VGA frame."""
    import cv2

    x0, y0, x1, y1 = photo.box
    scale = side / max(x1 - x0, y1 - y0)
    matrix = cv2.getRotationMatrix2D(((x0 + x1) / 2, (y0 + y1) / 2), angle, scale)
    matrix[:, 2] += np.asarray(centre) - np.asarray(((x0 + x1) / 2, (y0 + y1) / 2))
    return _warp(image, matrix), (centre[0], centre[1], side)


def turn(picture: np.ndarray, face: tuple[float, float, float], amount: float) -> np.ndarray:
    """A perspective warp about the face's vertical axis, the face's one side narrowed by ``amount``
    (0.3: 30 %): a flat picture turning, not a head (which would hide its far side)."""
    import cv2

    cx, cy, side = face
    h = side / 2
    src = np.float32([[cx - h, cy - h], [cx + h, cy - h], [cx + h, cy + h], [cx - h, cy + h]])
    squeeze = side * amount
    dst = np.float32([[cx - h + squeeze * 0.5, cy - h + squeeze * 0.25], [cx + h, cy - h],
                      [cx + h, cy + h], [cx - h + squeeze * 0.5, cy + h - squeeze * 0.25]])
    return cv2.warpPerspective(picture, cv2.getPerspectiveTransform(src, dst), (WIDTH, HEIGHT),
                               borderMode=cv2.BORDER_CONSTANT, borderValue=(90, 90, 90))


def darken(picture: np.ndarray, seed: int, level: float = 0.25, noise: float = 6.0) -> np.ndarray:
    """Low light: a gamma of 1.8, the result scaled to ``level`` of its brightness, sensor noise."""
    rng = np.random.default_rng(seed)
    dark = 255 * (picture / 255.0) ** 1.8 * level + rng.normal(0, noise, picture.shape)
    return np.clip(dark, 0, 255).astype(np.uint8)


SETS = ("camera", "tilted", "turned", "dark", "small")


def frames(kind: str, count: int = 8) -> Iterator[tuple[str, np.ndarray, tuple[float, float, float]]]:
    """``count`` frames per photograph of a set: (photo name, RGB frame, true face (cx, cy, side)).

    - ``camera``: the real photograph, a camera panning and zooming over it (face 120-200 px);
    - ``tilted``: the head tilted in the picture, -45 to 45 degrees;
    - ``turned``: a perspective turn of the picture, the face's one side narrowed 20-45 %;
    - ``dark``: low light and sensor noise, a quarter to a tenth of the brightness;
    - ``small``: faces 28-48 px wide in the VGA frame.
    """
    rng = np.random.default_rng(SETS.index(kind))
    for photo in PHOTOS:
        image = photo.load()
        for i in range(count):
            t = i / max(1, count - 1)
            centre = (WIDTH * (0.35 + 0.3 * t), HEIGHT * (0.45 + 0.1 * rng.random()))
            if kind == "camera":
                yield photo.name, *place(photo, image, side=120 + 80 * t, centre=centre)
            elif kind == "tilted":
                yield photo.name, *place(photo, image, angle=-45 + 90 * t, side=150, centre=centre)
            elif kind == "turned":
                picture, face = place(photo, image, side=150, centre=centre)
                yield photo.name, turn(picture, face, 0.2 + 0.25 * t), face
            elif kind == "dark":
                picture, face = place(photo, image, side=150, centre=centre)
                yield photo.name, darken(picture, i, level=0.25 - 0.15 * t), face
            elif kind == "small":
                yield photo.name, *place(photo, image, side=48 - 20 * t, centre=centre)
            else:
                raise ValueError(f"unknown set {kind!r}: expected one of {SETS}")


def hit(box, face: tuple[float, float, float]) -> bool:
    """A detection is on the face when its centre lies within a third of the face's side from the
    marked centre and its size is within half to twice the marked one (detectors draw faces differently:
    the cascade a square to the hairline, MTCNN brows to chin)."""
    cx, cy, side = face
    x0, y0, x1, y1 = box[:4]
    size = max(x1 - x0, y1 - y0)
    return bool(np.hypot((x0 + x1) / 2 - cx, (y0 + y1) / 2 - cy) <= side / 3 and 0.5 <= size / side <= 2)
