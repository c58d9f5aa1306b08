"""``mtcnn``: MTCNN (Zhang et al. 2016), face boxes and five landmarks, in torch, batched, CPU or GPU.

The weights are those of the ``mtcnn`` package on PyPI (ipazc/mtcnn 1.0.0, MIT licence), which ships them
inside its wheel (``mtcnn/assets/weights/{pnet,rnet,onet}.lz4``, 2 MB): nothing is downloaded at run time.
That package runs them with TensorFlow (an optional extra we do not install); here the three small
networks are rebuilt in torch layer for layer after its Keras definitions (``mtcnn/network/*.py``) and the
weights copied in. Its own modules are never imported (they import TensorFlow): the files are located
through the distribution's metadata, checked against their SHA-256 and only then unpickled (they are
joblib pickles of numpy arrays; the check means only these exact files are ever loaded).

Why MTCNN: it finds turned, tilted and dim faces the Haar cascade misses (docs/faces.md has the numbers),
gives the five landmarks alignment needs (the DFDC winners and DeepfakeBench's preprocessing use it or
RetinaFace), is small (0.5 M parameters: cheap on one core), and its weights come from the registry.

The pipeline is the published one (and the ``mtcnn`` package's): an image pyramid through PNet (12 px
windows, stride 2), non-maximum suppression, RNet on 24 x 24 crops of the survivors, ONet on 48 x 48 crops
for the final boxes and landmarks. Frames of one video have one size, so PNet runs on a whole batch of
frames per pyramid level, and RNet/ONet on every candidate of the batch at once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from fvc_faces.detectors import Box

PACKAGE = "mtcnn"
# The files of mtcnn 1.0.0's wheel. Another release with other files is refused (not silently used).
WEIGHTS_SHA256 = {
    "pnet": "ea6b0c3e685ebee3165326ad6484acc95f2ef78f1c94fbf40a55704fa989f7b5",
    "rnet": "cb00e6460f3c98b0bfafaba3c0a0ded4bdf6e62cee7174d969e8670d7e757fee",
    "onet": "94f6ea2f4cf985275ee958cdd762d17b6009348a4fb9d8c6be39ba73ffd22ca3",
}
# Frames are scaled down to this longer side before detection (the DFDC winners halved 1080p frames):
# the cost grows with the area, and a face that matters for a crop is far larger than PNet's 12 px.
DETECT_SIDE = 640
# The smallest face looked for, a share of the scaled frame's shorter side (and never under 20 px).
MIN_FACE_SHARE = 0.06
MIN_FACE_PX = 20
SCALE_FACTOR = 0.709  # between pyramid levels: the published value
THRESHOLDS = (0.6, 0.7, 0.8)  # PNet, RNet, ONet face probabilities: the published values
NMS = (0.5, 0.7, 0.7)  # per pyramid level, across levels and after RNet, after ONet (IoU)
BATCH = 16  # frames per PNet batch


def weight_files() -> tuple[str, dict[str, Path]]:
    """(the mtcnn distribution's version, {network: its weights file}), checked against WEIGHTS_SHA256."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        raise RuntimeError("the 'mtcnn' package (its weights) is not installed: pip install 'mtcnn==1.0.0'") from None
    files = {}
    for net, digest in WEIGHTS_SHA256.items():
        path = Path(str(dist.locate_file(f"mtcnn/assets/weights/{net}.lz4")))
        if not path.is_file():
            raise RuntimeError(f"{path}: missing from the mtcnn {dist.version} package")
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise RuntimeError(f"{path}: not the weights of mtcnn 1.0.0 (mtcnn {dist.version} installed; "
                               "fvc checks the files before loading them)")
        files[net] = path
    return dist.version, files


def _networks() -> tuple[Any, Any, Any]:
    import torch
    from torch import nn

    class PNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = nn.Sequential(
                nn.Conv2d(3, 10, 3), nn.PReLU(10),
                # Keras MaxPooling2D(2, 2, "same"): an odd side gets one more window (ceil_mode).
                nn.MaxPool2d(2, 2, ceil_mode=True),
                nn.Conv2d(10, 16, 3), nn.PReLU(16),
                nn.Conv2d(16, 32, 3), nn.PReLU(32))
            self.box = nn.Conv2d(32, 4, 1)
            self.face = nn.Conv2d(32, 2, 1)

        def forward(self, x):
            x = self.body(x)
            return self.box(x), torch.softmax(self.face(x), dim=1)

    def same_pool(x, size):
        # Keras MaxPooling2D(3, 2, "same") on an even side pads one column/row after (with -inf).
        return nn.functional.max_pool2d(nn.functional.pad(x, (0, 1, 0, 1), value=-math.inf), size, 2)

    def flatten(x):
        # Keras: Permute((2, 1, 3)) then Flatten of an NHWC map: the order (W, H, C).
        return x.permute(0, 3, 2, 1).reshape(x.shape[0], -1)

    class RNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
            self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
            self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
            self.fc4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
            self.box, self.face = nn.Linear(128, 4), nn.Linear(128, 2)

        def forward(self, x):  # (N, 3, 24, 24)
            x = same_pool(self.prelu1(self.conv1(x)), 3)  # 22 -> 11
            x = nn.functional.max_pool2d(self.prelu2(self.conv2(x)), 3, 2)  # 9 -> 4
            x = self.prelu4(self.fc4(flatten(self.prelu3(self.conv3(x)))))
            return self.box(x), torch.softmax(self.face(x), dim=1)

    class ONet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
            self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
            self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
            self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
            self.fc5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
            self.box, self.marks, self.face = nn.Linear(256, 4), nn.Linear(256, 10), nn.Linear(256, 2)

        def forward(self, x):  # (N, 3, 48, 48)
            x = same_pool(self.prelu1(self.conv1(x)), 3)  # 46 -> 23
            x = nn.functional.max_pool2d(self.prelu2(self.conv2(x)), 3, 2)  # 21 -> 10
            x = nn.functional.max_pool2d(self.prelu3(self.conv3(x)), 2, 2)  # 8 -> 4
            x = self.prelu5(self.fc5(flatten(self.prelu4(self.conv4(x)))))
            return self.box(x), self.marks(x), torch.softmax(self.face(x), dim=1)

    return PNet(), RNet(), ONet()


def _load(module: Any, arrays: Sequence[np.ndarray]) -> None:
    """Copy Keras weights (in its layer order) into ``module``'s parameters (in definition order)."""
    import torch

    params = list(module.parameters())
    if len(params) != len(arrays):
        raise RuntimeError(f"{type(module).__name__}: {len(arrays)} weight arrays for {len(params)} parameters")
    with torch.no_grad():
        for param, array in zip(params, arrays, strict=True):
            array = np.asarray(array, dtype=np.float32)
            if array.ndim == 4:  # Conv2D kernel (kh, kw, in, out) -> (out, in, kh, kw)
                array = array.transpose(3, 2, 0, 1)
            elif array.ndim == 2:  # Dense kernel (in, out) -> (out, in)
                array = array.T
            else:  # biases; PReLU alphas (1, 1, C) shared over the picture -> (C,)
                array = array.reshape(-1)
            if tuple(array.shape) != tuple(param.shape):
                raise RuntimeError(f"{type(module).__name__}: weights {array.shape} for a parameter "
                                   f"{tuple(param.shape)}")
            param.copy_(torch.from_numpy(np.ascontiguousarray(array)))


def _nms(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by non-maximum suppression (OpenCV's), best first."""
    import cv2

    if len(boxes) == 0:
        return np.zeros(0, dtype=int)
    rects = [(float(x0), float(y0), float(x1 - x0), float(y1 - y0)) for x0, y0, x1, y1 in boxes]
    return np.asarray(cv2.dnn.NMSBoxes(rects, scores.astype(float).tolist(), 0.0, threshold), dtype=int).reshape(-1)


def _nms_per_image(rows: np.ndarray, threshold: float) -> np.ndarray:
    """``rows`` (N, >= 6: image, x0, y0, x1, y1, score, ...) reduced by NMS within each image."""
    kept = [rows[rows[:, 0] == b][_nms(rows[rows[:, 0] == b, 1:5], rows[rows[:, 0] == b, 5], threshold)]
            for b in np.unique(rows[:, 0])]
    return np.concatenate(kept) if kept else rows[:0]


def _square(rows: np.ndarray) -> np.ndarray:
    rows = rows.copy()
    w, h = rows[:, 3] - rows[:, 1], rows[:, 4] - rows[:, 2]
    side = np.maximum(w, h)
    rows[:, 1] += (w - side) / 2
    rows[:, 2] += (h - side) / 2
    rows[:, 3] = rows[:, 1] + side
    rows[:, 4] = rows[:, 2] + side
    return rows


def _refine(rows: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    rows = rows.copy()
    w = rows[:, 3] - rows[:, 1] + 1
    h = rows[:, 4] - rows[:, 2] + 1
    rows[:, 1:5] += offsets * np.stack([w, h, w, h], axis=1)
    return rows


class MTCNNDetector:
    name = "mtcnn"
    landmarks = True  # each box is followed by the five landmarks (--face-align needs them)

    def __init__(self, device: str | None = None) -> None:
        import joblib
        import torch

        version, files = weight_files()
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.pnet, self.rnet, self.onet = _networks()
        for net, module in zip(("pnet", "rnet", "onet"), (self.pnet, self.rnet, self.onet), strict=True):
            _load(module, joblib.load(files[net]))  # checked against WEIGHTS_SHA256 above
            module.to(self.device).eval()
        self.version = (f"mtcnn {version} weights (pnet/rnet/onet sha256 {WEIGHTS_SHA256['pnet'][:8]}/"
                        f"{WEIGHTS_SHA256['rnet'][:8]}/{WEIGHTS_SHA256['onet'][:8]}), torch network fvc 1, "
                        f"side {DETECT_SIDE}, min face {MIN_FACE_SHARE}, thresholds {THRESHOLDS}")

    def detect(self, frame: np.ndarray) -> list[Box]:
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Box]]:
        """Per frame: (x0, y0, x1, y1, score, then the five landmarks as x, y pairs: the eye on the
        picture's left, the other eye, the nose tip, the mouth corner on the left, the other one)."""
        import torch

        out: list[list[Box]] = []
        # On the CPU, one thread: a batch's numbers were measured to change with the thread count (in
        # the 4th decimal), which would make a crop depend on -j (workers have one thread, a run with
        # -j 0 has all). prepare's workers already run one thread each.
        threads = torch.get_num_threads()
        if self.device.type == "cpu":
            torch.set_num_threads(1)
        try:
            for start in range(0, len(frames), BATCH):
                out.extend(self._batch(frames[start : start + BATCH]))
        finally:
            torch.set_num_threads(threads)
        return out

    def _batch(self, frames: Sequence[np.ndarray]) -> list[list[Box]]:
        import torch
        from torch.nn import functional as F

        h, w = frames[0].shape[:2]
        if any(f.shape[:2] != (h, w) for f in frames):  # a video's frames share one size; others one by one
            return [self._batch([f])[0] for f in frames]
        shrink = min(1.0, DETECT_SIDE / max(h, w))
        size = (round(h * shrink), round(w * shrink))
        with torch.inference_mode():
            if self.device.type == "cpu":
                # On the CPU, OpenCV's area resampling of the uint8 frames is several times faster
                # than torch's (adaptive pooling); on a GPU the frames go over once and stay there.
                pictures = [_area(f, size) for f in frames]
                images = _tensor(pictures, self.device)
            else:
                pictures = None
                images = _tensor(frames, self.device)
                if shrink < 1.0:
                    images = F.interpolate(images, size=size, mode="area")
            rows = self._pnet(images, pictures)
            rows = self._stage(images, rows, self.rnet, 24, THRESHOLDS[1], NMS[1])
            rows = self._stage(images, rows, self.onet, 48, THRESHOLDS[2], NMS[2])
        result: list[list[Box]] = [[] for _ in frames]
        for row in rows:
            values = row[1:16] / np.asarray([shrink] * 4 + [1.0] + [shrink] * 10)
            marks = values[5:]
            # (x1..x5, y1..y5) -> x, y pairs
            pairs = np.stack([marks[:5], marks[5:]], axis=1).reshape(-1)
            result[int(row[0])].append(tuple(float(v) for v in (*values[:5], *pairs)))
        return result

    def _pnet(self, images: Any, pictures: list[np.ndarray] | None) -> np.ndarray:
        """PNet over the pyramid: ``images`` (N, 3, H, W) in [-1, 1], ``pictures`` the same as uint8
        (H, W, 3) arrays where OpenCV resamples them (on the CPU), else None."""
        from torch.nn import functional as F

        _, _, h, w = images.shape
        min_face = max(MIN_FACE_PX, MIN_FACE_SHARE * min(h, w))
        scale = 12 / min_face
        found = []
        while min(h, w) * scale >= 12:
            size = (math.ceil(h * scale), math.ceil(w * scale))
            if pictures is None:
                level = F.interpolate(images, size=size, mode="area")
            else:
                # Each level from the one before (at most 1/0.709 larger): as sharp, far cheaper.
                pictures = [_area(p, size) for p in pictures]
                level = _tensor(pictures, self.device)
            offsets, probs = self.pnet(level)
            b, y, x = (probs[:, 1] > THRESHOLDS[0]).nonzero(as_tuple=True)
            if len(b):
                reg = offsets[b, :, y, x].cpu().numpy()
                b, y, x = (v.cpu().numpy().astype(float) for v in (b, y, x))
                x0, y0 = x * 2, y * 2
                rows = np.stack([b, (x0 + reg[:, 0] * 12) / scale, (y0 + reg[:, 1] * 12) / scale,
                                 (x0 + 12 + reg[:, 2] * 12) / scale, (y0 + 12 + reg[:, 3] * 12) / scale,
                                 probs[:, 1][probs[:, 1] > THRESHOLDS[0]].cpu().numpy()], axis=1)
                found.append(_nms_per_image(rows, NMS[0]))
            scale *= SCALE_FACTOR
        if not found:
            return np.zeros((0, 6))
        return _square(_nms_per_image(np.concatenate(found), NMS[1]))

    def _stage(self, images: Any, rows: np.ndarray, net: Any, size: int, threshold: float,
               nms: float) -> np.ndarray:
        if len(rows) == 0:
            return np.zeros((0, 16)) if size == 48 else rows
        rows = rows[np.argsort(rows[:, 0], kind="stable")]  # grouped by image, as _crops returns them
        patches = _crops(images, rows, size)
        outputs = net(patches)
        offsets = outputs[0].cpu().numpy()
        probs = outputs[-1][:, 1].cpu().numpy()
        if size == 48:
            marks = outputs[1].cpu().numpy()
            bw = (rows[:, 3] - rows[:, 1] + 1)[:, None]
            bh = (rows[:, 4] - rows[:, 2] + 1)[:, None]
            marks = np.concatenate([bw * marks[:, :5] + rows[:, 1:2] - 1, bh * marks[:, 5:] + rows[:, 2:3] - 1], axis=1)
        rows = _refine(rows[:, :6], offsets)
        rows[:, 5] = probs
        if size == 48:
            rows = np.concatenate([rows, marks], axis=1)
        rows = rows[probs > threshold]
        rows = _nms_per_image(rows, nms)
        return rows if size == 48 else _square(rows)


def _area(picture: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``picture`` resampled to ``size`` (height, width) by pixel area (OpenCV), as the published MTCNN."""
    import cv2

    if picture.shape[:2] == size:
        return np.ascontiguousarray(picture)
    return cv2.resize(np.ascontiguousarray(picture), (size[1], size[0]), interpolation=cv2.INTER_AREA)


def _tensor(pictures: Sequence[np.ndarray], device: Any) -> Any:
    """(N, 3, H, W) float32 in the networks' input range [-1, 1] from uint8 RGB pictures."""
    import torch

    images = torch.from_numpy(np.stack(pictures)).to(device).permute(0, 3, 1, 2).float()
    return (images - 127.5) / 128


def _crops(images: Any, rows: np.ndarray, size: int) -> Any:
    """``size`` x ``size`` bilinear crops of each row's box (image, x0, y0, x1, y1) from ``images``
    (N, 3, H, W); outside the picture 0 (grey in the networks' range), as tf.image.crop_and_resize."""
    import torch
    from torch.nn import functional as F

    _, _, h, w = images.shape
    out = []
    for b in np.unique(rows[:, 0]).astype(int):
        boxes = torch.as_tensor(rows[rows[:, 0] == b, 1:5], dtype=torch.float32, device=images.device)
        steps = torch.linspace(0, 1, size, device=images.device)
        # Sample points from the box's first to its last pixel (crop_and_resize's convention), in
        # grid_sample's [-1, 1] coordinates with align_corners=True.
        xs = boxes[:, 0:1] + (boxes[:, 2:3] - boxes[:, 0:1]) * steps  # (n, size)
        ys = boxes[:, 1:2] + (boxes[:, 3:4] - boxes[:, 1:2]) * steps
        gx = xs / (w - 1) * 2 - 1
        gy = ys / (h - 1) * 2 - 1
        grid = torch.stack([gx[:, None, :].expand(-1, size, -1), gy[:, :, None].expand(-1, -1, size)], dim=-1)
        # Every box of this image as one tall grid: one call, no copy of the image per box.
        sampled = F.grid_sample(images[b : b + 1], grid.reshape(1, -1, size, 2), mode="bilinear",
                                padding_mode="zeros", align_corners=True)
        out.append(sampled.reshape(3, -1, size, size).permute(1, 0, 2, 3))
    return torch.cat(out)
