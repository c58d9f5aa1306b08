"""A finished run, read: its config, its finished folds, each fold's model, scores of new videos.

The one reader of a run folder that ``fvc run`` wrote, used by ``fvc predict``, ``fvc evaluate``,
``fvc report``, ``fvc explain`` and the trackers; ``open_run(path)`` is the notebook's way in.
Checkpoints are read with ``weights_only=True``: a model.pt from elsewhere never runs code.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from fvc_core.config.run_file import read_run_config
from fvc_core.errors import BadVideoError, UserError, one_line

__all__ = ["FinishedRun", "expand_videos", "fold_dirs", "fold_number", "load_fold_model", "open_run",
           "read_run_config", "run_folds", "score_videos", "RunFolds"]

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}


def _section(config: dict[str, Any], key: str, where: Path) -> tuple[str, dict[str, Any]]:
    section = dict(config.get(key) or {})
    name = section.pop("name", None)
    if not isinstance(name, str):
        raise UserError(f"{where}: {key}.name is missing")
    return name, section


def fold_dirs(run_dir: Path) -> list[Path]:
    """The run's finished fold folders, in fold order.

    A fold is finished when its metrics.json exists (the trainer writes it last); its model.pt must
    then be there too: scoring without it would silently change the mean over folds. A fold still
    training has a model.pt (its best epoch so far) but no metrics.json: left out.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such run folder")
    # fold_<k>/, or repeat_<r>/fold_<k>/ for repeated cross-validation (trainer.repeats > 1).
    candidates = [*run_dir.glob("fold_*"), *run_dir.glob("repeat_*/fold_*")]
    found = [d for d in candidates if d.name[5:].isdigit() and (d.parent == run_dir or d.parent.name[7:].isdigit())
             and (d / "metrics.json").exists()]
    if not found:
        raise UserError(f"{run_dir}: no finished fold (fold_<k>/model.pt with metrics.json) here yet")
    for d in found:
        if not (d / "model.pt").exists():
            raise UserError(f"{d / 'model.pt'}: missing, though fold {d.name[5:]} finished (metrics.json is "
                            "there); restore it, or delete the fold folder and run `fvc run` again to retrain it")
    return sorted(found, key=fold_number)


@dataclass(frozen=True)
class RunFolds:
    """The folds a run's scores come from: its finished folds, and those its config asks for that have
    not finished (a fold still training, or killed). A partial run still scores, as ``fvc report``
    still reports it, but every command that scores with it says which folds it used in one line."""

    run_dir: Path
    dirs: tuple[Path, ...]
    used: tuple[int, ...]
    expected: int | None  # trainer.folds x trainer.repeats of config.yaml; None when it does not say

    @property
    def missing(self) -> tuple[int, ...]:
        return tuple(k for k in range(self.expected or 0) if k not in self.used)

    def warning(self) -> str | None:
        """One line naming the folds used and the missing ones, or None for a complete run."""
        if not self.missing:
            return None
        return (f"{self.run_dir}: scored with {len(self.used)} of {self.expected} fold models (fold "
                f"{_numbers(self.used)}); fold {_numbers(self.missing)} not finished (no metrics.json: still "
                "training, or stopped before the end)")


def _numbers(folds: tuple[int, ...]) -> str:
    return ", ".join(str(k) for k in folds)


def run_folds(run_dir: str | Path, config: dict[str, Any] | None = None) -> RunFolds:
    """The run's finished folds (``fold_dirs``) and how many its ``config.yaml`` asks for."""
    run_dir = Path(run_dir)
    trainer = (read_run_config(run_dir) if config is None else config).get("trainer") or {}
    dirs = fold_dirs(run_dir)
    folds, repeats = trainer.get("folds"), trainer.get("repeats", 1)
    expected = folds * repeats if isinstance(folds, int) and isinstance(repeats, int) else None
    return RunFolds(run_dir, tuple(dirs), tuple(fold_number(d) for d in dirs), expected)


def fold_number(fold_dir: Path) -> int:
    """The fold's number across the run (what trackers and ``score_fold_<k>`` use): ``k`` for
    ``fold_<k>``, ``r * folds + k`` for ``repeat_<r>/fold_<k>``, as its metrics.json records it."""
    from fvc_core.training.outputs import read_json

    fold_dir = Path(fold_dir)
    if fold_dir.parent.name.startswith("repeat_"):
        recorded = read_json(fold_dir / "metrics.json").get("fold")
        if isinstance(recorded, int):
            return recorded
        raise UserError(f"{fold_dir / 'metrics.json'}: no fold number; the run folder is not one fvc wrote")
    return int(fold_dir.name[5:])


# What a model's behaviour depends on (as in ResolvedConfig.hash): trackers and output_dir are not.
IDENTITY_KEYS = ("seed", "data", "model", "trainer")


def _config_differences(stored: dict[str, Any], run: dict[str, Any]) -> list[str]:
    """Dotted keys of the identity sections whose values differ between two configs."""
    from fvc_core.training.outputs import plain

    def flat(value: Any, prefix: str) -> dict[str, Any]:
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for k, v in value.items():
                out.update(flat(v, f"{prefix}.{k}" if prefix else str(k)))
            return out
        return {prefix: plain(value)}

    a = flat({k: stored.get(k) for k in IDENTITY_KEYS}, "")
    b = flat({k: run.get(k) for k in IDENTITY_KEYS}, "")
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


def _same_experiment(stored: dict[str, Any], run: dict[str, Any]) -> bool:
    """A model.pt an older fvc wrote, before keys config.yaml now holds at their defaults existed
    (the run resumed by a newer fvc since, which rewrote config.yaml): the same experiment."""
    from fvc_core.config.identity import Defaults, compare
    from fvc_core.training.outputs import plain

    found = compare(plain(stored), plain(run), Defaults.from_registry(run))
    return found.same and bool(found.filled)


def load_fold_model(fold_dir: str | Path, *, device: str = "cpu"):
    """The fold's best model (weights of model.pt), built by its model plugin, in eval() mode.

    The model's name and config come from the run's config.yaml (beside the fold folders),
    or from the checkpoint itself when config.yaml is absent. A model.pt trained under another
    config than config.yaml (other normalisation, other size) is refused: its scores would be
    made from clips it never saw the like of.
    """
    import torch

    from fvc_core.plugins import get_registry
    from fvc_core.training.checkpoint import CheckpointError, load_safe

    fold_dir = Path(fold_dir)
    path = fold_dir / "model.pt"
    state = load_safe(path)
    if not isinstance(state, dict) or "model_state_dict" not in state:
        raise CheckpointError(f"{path}: not an fvc checkpoint (no model_state_dict)")
    config_path = fold_dir.parent / "config.yaml"
    stored = state.get("config")
    config = read_run_config(fold_dir.parent) if config_path.exists() else stored
    if not isinstance(config, dict) or not isinstance(config.get("model"), dict):
        raise CheckpointError(f"{path}: no config.yaml beside the fold and no config in the checkpoint")
    if config is not stored:
        if not isinstance(stored, dict):
            raise CheckpointError(f"{path}: holds no config to check against {config_path}; not this run's model")
        differ = _config_differences(stored, config)
        if differ and not _same_experiment(stored, config):
            shown = ", ".join(differ[:5]) + (f" and {len(differ) - 5} more" if len(differ) > 5 else "")
            raise CheckpointError(f"{path}: trained under another config than {config_path} (differs in "
                                  f"{shown}); not this run's model")
    name, model_config = _section(config, "model", config_path)
    model = get_registry().create("models", name, model_config)  # fvc_core.create_model, without the package's loop
    try:
        model.load_state_dict(state["model_state_dict"])
    except RuntimeError as exc:
        raise CheckpointError(f"{path}: weights do not fit model {name!r} "
                              f"({one_line(exc, 200, with_type=False)})") from None
    return model.to(torch.device(device)).eval()


# A key such as mem://0003 or s3://bucket/clip.mp4: the dataset's to read, never a local path to
# normalise (Path() would make it mem:/0003).
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def expand_videos(items: list[str | Path]) -> list[str]:
    """What to score, in order: a local file as given, a folder's video files (searched recursively,
    sorted), and a key with a scheme (``mem://0003``) unchanged, for a dataset whose keys are not paths."""
    out: list[str] = []
    for item in items:
        if isinstance(item, str) and _URI.match(item):
            out.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise UserError(f"{path}: no video files ({', '.join(sorted(VIDEO_SUFFIXES))}) in this folder")
            out += [str(p) for p in found]
        elif path.is_file():
            out.append(str(path))
        else:
            raise UserError(f"{path}: no such video file or folder")
    return out


def _dataset_key(video: str) -> str:
    """A local file is read by its absolute path, a key with a scheme exactly as given."""
    return video if _URI.match(video) else str(Path(video).resolve())


def score_videos(run_dir: str | Path, paths: list[str | Path], *, device: str = "cpu",
                 dataset: Any = None, frames: bool = False, folds: RunFolds | None = None) -> pl.DataFrame:
    """Fake scores of videos from every fold's model, and their mean.

    Columns: video_path, score (mean over folds), prediction (fake/real at the run's threshold),
    score_fold_<k> per fold, error (why a video was skipped under on_bad_video: skip, else null).
    Each fold's score is aggregated from the frames as in training (the run's trainer.aggregation).
    ``frames``: also each frame's fake probability, ``frame_scores_fold_<k>`` and their mean over folds
    ``frame_scores`` (lists; only for models that give frame scores). ``dataset`` defaults to the run's
    dataset plugin, rebuilt from config.yaml to read the videos exactly as in training. ``folds``: the
    folds to score with (``run_folds``, so a caller records the very folds used), else the finished ones.
    """
    import torch

    from fvc_core.training.scoring import aggregation_of, has_frame_scores

    run_dir = Path(run_dir)
    config = read_run_config(run_dir)
    if dataset is None:
        from fvc_core.plugins import get_registry

        name, data_config = _section(config, "data", run_dir / "config.yaml")
        dataset = get_registry().create("datasets", name, data_config)
    threshold = float((config.get("trainer") or {}).get("threshold", 0.5))
    aggregation = aggregation_of(config)
    policy = getattr(dataset, "on_bad_video", "fail")
    folds = folds if folds is not None else run_folds(run_dir, config)
    models = [(k, load_fold_model(d, device=device)) for k, d in zip(folds.used, folds.dirs, strict=True)]
    for _, model in models:
        aggregation.check(model)
    frames = frames and all(has_frame_scores(model) for _, model in models)
    videos = expand_videos(list(paths))

    rows: list[dict[str, Any]] = []
    with torch.no_grad():
        for path in videos:
            row: dict[str, Any] = {"video_path": path, "score": None, "prediction": None}
            try:
                clip = torch.as_tensor(dataset.read_video(_dataset_key(path))).unsqueeze(0).to(device)
            except BadVideoError as exc:
                if policy != "skip":
                    raise
                rows.append({**row, "error": exc.reason})
                continue
            fold_scores: dict[str, float] = {}
            fold_frames: dict[str, list[float]] = {}
            for k, model in models:
                _, score, frame_scores = aggregation.score(model, clip)
                fold_scores[f"score_fold_{k}"] = float(score[0])
                if frames and frame_scores is not None:
                    fold_frames[f"frame_scores_fold_{k}"] = frame_scores[0].tolist()
            mean = sum(fold_scores.values()) / len(fold_scores)
            if frames:
                fold_frames["frame_scores"] = torch.tensor(list(fold_frames.values())).mean(0).tolist()
            rows.append({**row, "score": mean, "prediction": "fake" if mean >= threshold else "real",
                         **fold_scores, **fold_frames, "error": None})
    schema = {"video_path": pl.String, "score": pl.Float64, "prediction": pl.String,
              **{f"score_fold_{k}": pl.Float64 for k, _ in models}}
    if frames:
        schema |= {"frame_scores": pl.List(pl.Float64),
                   **{f"frame_scores_fold_{k}": pl.List(pl.Float64) for k, _ in models}}
    return pl.DataFrame(rows, schema=schema | {"error": pl.String})


class FinishedRun:
    """A run folder ``fvc run`` wrote (``<output_dir>/<model name>``), read on demand.

    Nothing is read when it is opened; each part is read the first time it is asked for (and kept),
    with the one-line errors ``fvc predict`` gives: a notebook, ``fvc predict``, ``fvc evaluate``,
    ``fvc explain`` and ``fvc report`` see the same run the same way. Only finished folds count (their
    metrics.json exists: the trainer writes it last); a fold still training is left out.

    ::

        run = fvc_core.open_run("runs/quickstart/naive_cnn")
        run.metrics                      # one row per finished fold: fold, roc_auc, accuracy...
        model = run.model(0)             # fold 0's best model, weights checked, in eval() mode
        run.score(["clip.mp4"])          # the folds' mean fake score of a video
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"open_run({str(self.path)!r})"

    @cached_property
    def config(self) -> dict[str, Any]:
        """The resolved config the run saved as config.yaml (plain data)."""
        return read_run_config(self.path)

    @cached_property
    def state(self) -> dict[str, Any]:
        """run.json: the run's id, status, versions and protocol as the runner recorded them."""
        state = json.loads((self.path / "run.json").read_text())
        if not isinstance(state, dict):
            raise UserError(f"{self.path / 'run.json'}: not an fvc run record")
        return state

    @cached_property
    def protocol(self) -> dict[str, Any]:
        """How the run's numbers were measured (model, seed, data, split, clips...), from run.json."""
        return dict(self.state.get("protocol") or {})

    @cached_property
    def run_folds(self) -> RunFolds:
        """The finished folds and how many the config asks for (``warning()``: one line for a partial run)."""
        return run_folds(self.path, self.config)

    def fold_dirs(self) -> list[Path]:
        """The finished fold folders, in fold order (a UserError when there is none, or a model.pt is missing)."""
        return fold_dirs(self.path)

    @cached_property
    def folds(self) -> pl.DataFrame:
        """One row per finished fold: ``fold`` (its number across repeats), ``path`` (its folder)."""
        folds = self.run_folds
        return pl.DataFrame({"fold": list(folds.used), "path": [str(d) for d in folds.dirs]},
                            schema={"fold": pl.Int64, "path": pl.String})

    @cached_property
    def metrics(self) -> pl.DataFrame:
        """One row per finished fold: ``fold`` and every number its metrics.json holds (test metrics,
        best epoch, frame ROC AUC...); nested records (protocol, aggregation) are left to ``protocol``."""
        from fvc_core.training.outputs import read_json

        rows = []
        for fold, directory in zip(self.run_folds.used, self.run_folds.dirs, strict=True):
            recorded = read_json(directory / "metrics.json")
            rows.append({"fold": fold} | {k: v for k, v in recorded.items() if k != "fold"
                                          and (v is None or isinstance(v, (int, float, str, bool)))})
        return pl.DataFrame(rows, infer_schema_length=None)

    @cached_property
    def predictions(self) -> pl.DataFrame:
        """Every finished fold's test predictions (predictions.parquet), one row per video and fold:
        ``video_path``, ``label``, ``score`` (fake probability), ``fold``, and ``frame_scores`` when kept."""
        return pl.concat([pl.read_parquet(d / "predictions.parquet") for d in self.run_folds.dirs],
                         how="diagonal_relaxed")

    def model(self, fold: int, *, device: str = "cpu") -> Any:
        """Fold ``fold``'s best model: weights read with ``weights_only=True``, refused when trained
        under another config than config.yaml, built by its model plugin, in eval() mode."""
        folds = self.run_folds
        if fold not in folds.used:
            raise UserError(f"{self.path}: fold {fold} has not finished (finished: "
                            f"{_numbers(folds.used) or 'none'})")
        return load_fold_model(folds.dirs[folds.used.index(fold)], device=device)

    def dataset(self) -> Any:
        """The run's dataset plugin rebuilt from config.yaml: videos are read exactly as in training."""
        from fvc_core.plugins import get_registry

        name, data_config = _section(self.config, "data", self.path / "config.yaml")
        return get_registry().create("datasets", name, data_config)

    @cached_property
    def aggregation(self) -> Any:
        """How a model's frame scores become a video's score in this run (``trainer.aggregation``)."""
        from fvc_core.training.scoring import aggregation_of

        return aggregation_of(self.config)

    @property
    def threshold(self) -> float:
        """The fake/real threshold of the run's predictions."""
        return float((self.config.get("trainer") or {}).get("threshold", 0.5))

    def score(self, videos: list[str | Path], *, device: str = "cpu", dataset: Any = None, frames: bool = False,
              folds: RunFolds | None = None) -> pl.DataFrame:
        """The fake scores of ``videos`` (files, folders, keys with a scheme) by every finished fold's model
        and their mean (``score_videos``)."""
        return score_videos(self.path, videos, device=device, dataset=dataset, frames=frames,
                            folds=folds if folds is not None else self.run_folds)


def open_run(path: str | Path) -> FinishedRun:
    """The finished run at ``path`` (``<output_dir>/<model name>``), read as each part is asked for."""
    return FinishedRun(path)
