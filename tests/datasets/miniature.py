"""Each dataset's official layout in miniature: tiny real videos encoded with PyAV, split files in the
published formats. Fakes are brighter than reals (``bright``), so a model can learn them."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np

FFPP_METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")


def tiny_video(path: Path, *, fake: bool, seed: int = 0, frames: int = 4, size: int = 32) -> Path:
    """An H.264 clip: dark noisy frames for a real video, bright ones for a fake."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = 170 if fake else 70
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=8)
        stream.width = stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": "18", "preset": "ultrafast"}
        for i in range(frames):
            img = np.clip(base + rng.integers(-40, 40, (size, size, 3)), 0, 255).astype(np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def ffpp(root: Path, pairs: dict[str, list[list[str]]] | None = None, methods=("Deepfakes", "FaceSwap"),
         comp: str = "c23") -> Path:
    """FF++: every identity of the pairs as an original, and target_source fakes both ways per method."""
    pairs = pairs or {"train": [["000", "003"], ["001", "002"]], "val": [["004", "005"]],
                      "test": [["006", "007"]]}
    seed = 0
    for items in pairs.values():
        for a, b in items:
            for ident in (a, b):
                seed += 1
                tiny_video(root / "original_sequences/youtube" / comp / "videos" / f"{ident}.mp4", fake=False,
                           seed=seed)
            for method in methods:
                for t, s in ((a, b), (b, a)):
                    seed += 1
                    tiny_video(root / "manipulated_sequences" / method / comp / "videos" / f"{t}_{s}.mp4",
                               fake=True, seed=seed)
    (root / "splits").mkdir(parents=True, exist_ok=True)
    for split, items in pairs.items():
        (root / "splits" / f"{split}.json").write_text(json.dumps(items))
    return root


def celebdf(root: Path) -> Path:
    """Celeb-DF v2: two celebrities' reals, fakes between them, a YouTube real, and the test list."""
    for i, name in enumerate(["id0_0000", "id0_0001", "id1_0000", "id2_0000"]):
        tiny_video(root / "Celeb-real" / f"{name}.mp4", fake=False, seed=10 + i)
    for i, name in enumerate(["id0_id1_0000", "id1_id0_0000", "id2_id1_0000"]):
        tiny_video(root / "Celeb-synthesis" / f"{name}.mp4", fake=True, seed=20 + i)
    for i, name in enumerate(["00170", "00171"]):
        tiny_video(root / "YouTube-real" / f"{name}.mp4", fake=False, seed=30 + i)
    (root / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00170.mp4\n1 Celeb-real/id2_0000.mp4\n0 Celeb-synthesis/id2_id1_0000.mp4\n")
    return root


def dfdc(root: Path) -> Path:
    """DFDC: two parts, each with its metadata.json; fakes name their original."""
    parts = {
        "dfdc_train_part_0": {"aaa.mp4": ("REAL", None), "bbb.mp4": ("FAKE", "aaa.mp4"),
                              "ccc.mp4": ("FAKE", "aaa.mp4")},
        "dfdc_train_part_1": {"ddd.mp4": ("REAL", None), "eee.mp4": ("FAKE", "ddd.mp4")},
    }
    seed = 40
    for part, files in parts.items():
        meta = {}
        for name, (label, original) in files.items():
            seed += 1
            tiny_video(root / part / name, fake=label == "FAKE", seed=seed)
            meta[name] = {"label": label, "split": "train", **({"original": original} if original else {})}
        (root / part / "metadata.json").write_text(json.dumps(meta))
    return root


def dfd(root: Path, comp: str = "c23") -> Path:
    """DeepFakeDetection: actors' scenes and the swaps between them."""
    for i, name in enumerate(["01__exit_phone_room", "02__exit_phone_room", "03__kitchen_pan"]):
        tiny_video(root / "original_sequences/actors" / comp / "videos" / f"{name}.mp4", fake=False, seed=50 + i)
    for i, name in enumerate(["01_02__exit_phone_room__YVGY8LOK", "02_01__exit_phone_room__ABCD1234"]):
        tiny_video(root / "manipulated_sequences/DeepFakeDetection" / comp / "videos" / f"{name}.mp4",
                   fake=True, seed=60 + i)
    return root
