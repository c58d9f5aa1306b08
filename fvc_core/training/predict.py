"""Using a trained run: rebuild a fold's model, score new videos, ``fvc predict``.

Checkpoints are read with ``weights_only=True``: a model.pt from elsewhere never runs code.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from fvc_core.errors import BadVideoError, UserError, one_line
from fvc_core.output_file import OutputKind, check_output, write_output

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}


def read_run_config(run_dir: Path) -> dict[str, Any]:
    """The resolved config the runner saved as ``<run_dir>/config.yaml``."""
    import yaml

    path = Path(run_dir) / "config.yaml"
    if not path.exists():
        raise UserError(f"{path}: not found; RUN_DIR is <output_dir>/<model name> of an `fvc run`")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML ({one_line(exc, with_type=False)})") from None
    if not isinstance(data, dict) or not isinstance(data.get("model"), dict):
        raise UserError(f"{path}: not an fvc run config (no model section)")
    return data


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

    from fvc_core import create_model
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
    model = create_model(name, model_config)
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


SCORES = OutputKind("predict", "scores of fvc predict")
"""What ``fvc predict -o`` writes: it replaces only its own earlier scores, never a table of the user's or
fvc index's (a run's training table)."""


def run_command(args: argparse.Namespace) -> int:
    from rich.table import Table

    from fvc_core.console import get_console

    output = Path(args.output) if args.output else None
    if output is not None:
        if output.suffix.lower() not in (".csv", ".json", ".parquet"):
            raise UserError(f"-o {output}: use a .csv, .json or .parquet file name")
        check_output(output, SCORES)  # before minutes of scoring, not after
    folds = run_folds(args.run_dir)
    if (partial := folds.warning()) is not None:
        print(f"warning: {partial}", file=sys.stderr)
    frame = score_videos(args.run_dir, args.videos, device=args.device, folds=folds)
    console = get_console()
    table = Table(title=f"{args.run_dir}: mean fake score over {len(folds.used)} fold model(s)")
    table.add_column("video", overflow="fold")
    table.add_column("score", justify="right")
    table.add_column("prediction")
    for rec in frame.iter_rows(named=True):
        score = f"{rec['score']:.4f}" if rec["score"] is not None else "-"
        table.add_row(rec["video_path"], score, rec["prediction"] or f"[yellow]skipped: {rec['error']}[/]")
    console.print(table)
    if output is not None:
        suffix = output.suffix.lower()
        write = {".csv": frame.write_csv, ".json": frame.write_json}.get(suffix, frame.write_parquet)
        write_output(output, write, SCORES)
        console.print(f"scores written to {output}")
    return 0
