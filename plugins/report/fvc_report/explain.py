"""`fvc explain`: when in a video and where in its frames each fold model sees a fake.

Per-frame fake scores come from the model's ``frame_logits(x) -> (N, T, classes)``, the optional
part of the model contract this command needs (naive_cnn has it); a model without it is told so in
one line. Grad-CAM (Selvaraju et al. 2017) is written once here against the registered model: the
activations of its last ``nn.Conv2d`` (or the layer it names in ``gradcam_layer``) are weighted by
the spatially averaged gradient of the frames' fake logit. Hooks record every call of that layer
that builds a graph, in call order, so models that run frames in chunks (naive_cnn recomputes each
chunk in its backward pass) give one map per frame all the same.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from fvc_core.contract import UserError


def target_layer(model: Any) -> Any:
    from torch import nn

    named = getattr(model, "gradcam_layer", None)
    if isinstance(named, str):
        return dict(model.named_modules())[named]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if not convs:
        raise UserError(f"model {type(model).__name__}: no Conv2d layer for Grad-CAM (name one in gradcam_layer)")
    return convs[-1]


def _fake_logit(frame_logits: Any) -> Any:
    # Two classes: the fake logit minus the real one (softmax depends only on the difference);
    # one class: the logit itself.
    return frame_logits[..., 1] - frame_logits[..., 0] if frame_logits.shape[-1] >= 2 else frame_logits[..., 0]


def frame_scores_and_cams(model: Any, clip: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(scores (T,), cams (T, h, w) in [0, 1] or None when the layer's calls do not map to frames)."""
    import torch

    from fvc_core.contract import fake_probability

    if not callable(getattr(model, "frame_logits", None)):
        raise UserError(f"model {type(model).__name__} does not expose frame logits (a frame_logits(x) method "
                        "returning (N, T, classes)); fvc explain needs them")
    layer = target_layer(model)
    records: list[dict[str, Any]] = []

    def forward_hook(_module: Any, _inputs: Any, output: Any) -> None:
        if not (torch.is_grad_enabled() and output.requires_grad):
            return  # a pass without a graph (a chunked model's first pass): no gradient will come
        record = {"act": output.detach(), "grad": None}
        output.register_hook(lambda g, r=record: r.__setitem__("grad", g.detach()))
        records.append(record)

    handle = layer.register_forward_hook(forward_hook)
    try:
        with torch.enable_grad():
            logits = model.frame_logits(clip)  # (1, T, C)
            _fake_logit(logits.float()).sum().backward()
    finally:
        handle.remove()
        model.zero_grad(set_to_none=True)
    scores = fake_probability(logits.detach()[0]).cpu().numpy()
    done = [r for r in records if r["grad"] is not None]
    if not done:
        return scores, None
    act = torch.cat([r["act"] for r in done]).float()
    grad = torch.cat([r["grad"] for r in done]).float()
    if act.ndim != 4 or act.shape[0] != len(scores):
        return scores, None
    cam = torch.relu((grad.mean(dim=(2, 3), keepdim=True) * act).sum(1))
    peak = cam.flatten(1).max(1).values.clamp_min(1e-12)[:, None, None]
    return scores, (cam / peak).cpu().numpy()


def _overlay(frame: np.ndarray, cam: np.ndarray) -> np.ndarray:
    import matplotlib
    from PIL import Image

    h, w = frame.shape[:2]
    # Bilinear: the coarse map's cells would otherwise read as sharp blocks that are not in the data.
    smooth = np.asarray(Image.fromarray(cam.astype(np.float32), mode="F").resize((w, h), Image.BILINEAR))
    heat = matplotlib.colormaps["jet"](smooth.clip(0, 1))[..., :3]
    return (0.55 * frame / 255.0 + 0.45 * heat).clip(0, 1)


def explain(run_dir: Path, video: Path, *, frames: int = 4, device: str = "cpu") -> dict[str, Any]:
    """Per fold: frame scores ``(K, T)`` and Grad-CAM maps ``(K, T, h, w)`` of each of the video's K windows
    (K = 1 unless ``data.sampler: window`` with ``clips_per_video`` > 1), and the video's score as the run
    scores it (its aggregation; several windows: the mean of their fake probabilities); and the clips."""
    import torch

    from fvc_core.contract import fold_number, load_fold_model, open_run

    if not video.is_file():
        raise UserError(f"{video}: no such video file")
    run = open_run(run_dir)
    folds = run.fold_dirs()  # finished folds only, each with its model.pt (one line otherwise)
    clip = torch.as_tensor(run.dataset().read_video(str(video.resolve())))
    # An evaluation read of several windows is (K, T, C, H, W); each window is explained on its own, as
    # evaluation scores each on its own before averaging their probabilities.
    windows = clip if clip.ndim == 5 else clip.unsqueeze(0)
    aggregation = run.aggregation
    out: dict[str, Any] = {"clip": windows.numpy(), "folds": {}}
    for d in folds:
        model = load_fold_model(d, device=device)
        each = [frame_scores_and_cams(model, w.unsqueeze(0).to(device)) for w in windows]
        cams = [c for _, c in each]
        with torch.no_grad():
            _, video_score, _ = aggregation.score(model, clip.unsqueeze(0).to(device))
        out["folds"][fold_number(d)] = {"scores": np.stack([s for s, _ in each]),
                                        "cams": None if any(c is None for c in cams) else np.stack(cams),
                                        "video_score": float(video_score[0])}
    t = windows.shape[1]
    out["shown"] = np.unique(np.linspace(0, t - 1, max(1, min(frames, t))).round().astype(int))
    return out


def figures(result: dict[str, Any], video: Path) -> dict[str, bytes]:
    """PNG bytes by file name: frame_scores.png, and gradcam_fold_<k>.png per fold with maps (two rows, frames
    and their maps, per window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fvc_report.plots import png

    out: dict[str, bytes] = {}
    windows, length = result["clip"].shape[:2]
    fig, ax = plt.subplots(figsize=(8, 3))

    def draw(scores: np.ndarray, label: str, **style: Any) -> None:
        # Windows one after another on the x axis, a gap between them: they are not consecutive in time.
        for w in range(windows):
            (line,) = ax.plot(np.arange(length) + w * length, scores[w], label=label if w == 0 else None, **style)
            style["color"] = line.get_color()  # one colour per fold across its windows

    for k, fold in result["folds"].items():
        draw(fold["scores"], f"fold {k}: video score {fold['video_score']:.2f}", marker=".")
    mean = np.mean([f["scores"] for f in result["folds"].values()], axis=0)
    draw(mean, "mean of folds", color="black", lw=2)
    if windows > 1:
        for w in range(1, windows):
            ax.axvline(w * length - 0.5, color="grey", ls=":", lw=1)
        ax.set_xlabel(f"frame of each of the {windows} windows (evenly placed, as evaluation scores them), "
                      "one window after another", fontsize=8)
    else:
        ax.set_xlabel("frame of the clip (as sampled by the dataset plugin)")
    ax.set(ylabel="fake score", ylim=(-0.02, 1.02), title=f"{video.name}: per-frame fake score")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    out["frame_scores.png"] = png(fig)
    frames = result["clip"].transpose(0, 1, 3, 4, 2)
    if frames.shape[-1] == 1:
        frames = np.repeat(frames, 3, axis=-1)
    shown = result["shown"]
    for k, fold in result["folds"].items():
        if fold["cams"] is None:
            continue
        fig, axes = plt.subplots(2 * windows, len(shown), figsize=(2.1 * len(shown), 4.4 * windows), squeeze=False)
        for w in range(windows):
            for col, t in enumerate(shown):
                where = f"window {w}, frame {t}" if windows > 1 else f"frame {t}"
                axes[2 * w][col].imshow(frames[w, t])
                axes[2 * w][col].set_title(f"{where}: {fold['scores'][w, t]:.2f}", fontsize=8)
                axes[2 * w + 1][col].imshow(_overlay(frames[w, t].astype(float), fold["cams"][w, t]))
                for row in (2 * w, 2 * w + 1):
                    axes[row][col].axis("off")
        fig.suptitle(f"{video.name}: Grad-CAM of the fake logit, fold {k}", fontsize=9)
        fig.tight_layout()
        out[f"gradcam_fold_{k}.png"] = png(fig)
    return out


EXPLAIN = "explain"  # the ownership kind of an `fvc explain -o` folder
_FIGURE = re.compile(r"(.+)_(frame_scores|gradcam_fold_\d+)\.png")


def _earlier_explain(folder: Path) -> bool:
    """A folder an `fvc explain` wrote before folders were marked: nothing in it but whole sets of its
    figures (each video's frame scores and its fold 0 map), not one picture that happens to be named so."""
    found: dict[str, set[str]] = {}
    for entry in folder.iterdir():
        match = _FIGURE.fullmatch(entry.name)
        if not (match and entry.is_file()):
            return False
        found.setdefault(match[1], set()).add(match[2])
    return bool(found) and all({"frame_scores", "gradcam_fold_0"} <= kinds for kinds in found.values())


def write_explain(run_dir: Path, video: Path, out_dir: Path, *, frames: int = 4, device: str = "cpu") -> list[Path]:
    from fvc_core.contract import ownership, write_atomic

    # The figures' names are made from the video's: in a folder of someone else's files they could
    # replace a file of the same name.
    way_out = "choose another -o folder (or an empty one)"
    ownership.check_claimable(out_dir, EXPLAIN, way_out=way_out, legacy=_earlier_explain)
    result = explain(run_dir, video, frames=frames, device=device)
    pictures = figures(result, video)
    ownership.claim(out_dir, EXPLAIN, way_out=way_out, legacy=_earlier_explain)
    written = []
    stem = video.stem
    for name, data in pictures.items():
        path = out_dir / f"{stem}_{name}"
        with ownership.os_errors(path):  # a figure's name from a 250-byte video name can pass the limit
            write_atomic(path, data)
        written.append(path)
    missing = [k for k, f in result["folds"].items() if f["cams"] is None]
    if missing:
        from fvc_core.contract import get_console

        get_console().print(f"Grad-CAM maps left out for fold(s) {missing}: the model's last Conv2d calls do not "
                            "map one-to-one to the clip's frames")
    return written


def report_section(run_dir: Path, video: Path) -> str:
    from fvc_report.render import esc, img

    result = explain(run_dir, video)
    pictures = figures(result, video)
    parts = "".join(img(data, name) for name, data in pictures.items())
    windows = result["clip"].shape[0]
    each = (f" Each of the video's {windows} windows (evenly placed, as evaluation scores them) is explained on "
            "its own; the video score is the mean of their fake probabilities." if windows > 1 else "")
    return (f'<h2 id="explain">Explain: {esc(video.name)}</h2><p>Per-frame fake score of each fold model (and the '
            "video's score as the run scores it) and Grad-CAM heat maps (last convolution layer, gradient of the "
            f"fake logit) over sampled frames.{each}</p>" + parts)
