"""One fold: train with accumulation, AMP and clipping, validate every epoch, keep the best
epoch, checkpoint for resume, score the held-out part once at the end.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from fvc_core.errors import BadVideoError, NonFiniteLossError, UserError
from fvc_core.training import checkpoint
from fvc_core.training.config import PRETRAINED_BACKBONE_LR_FACTOR, SupervisedConfig
from fvc_core.training.data import Key, clip_seed, epoch_order
from fvc_core.training.metrics import validation_metrics
from fvc_core.training.schedule import EarlyStopping, warmup_constant, warmup_cosine
from fvc_core.training.scoring import Aggregation

TIMINGS = ("epoch_seconds", "data_wait_seconds")
# How an epoch ran, not what it learned: in history.json, not sent to trackers.
RUN_FACTS = (*TIMINGS, "torch_threads")


class SkippedVideos:
    """Videos left out under ``on_bad_video: skip``; kept in skipped_videos.json across resumes."""

    def __init__(self, path: Path, policy: str, writes: bool = True):
        """``writes``: False in a data-parallel fold's ranks other than 0, which record in memory and
        hand their finds to rank 0 (one writer of skipped_videos.json)."""
        from fvc_core.training.outputs import read_json

        self.path = Path(path)
        self.policy = policy
        self.writes = writes
        self.items: dict[str, str] = {}
        if self.path.exists():
            self.items = {d["video_path"]: d["reason"] for d in read_json(self.path)}

    def handle(self, video_path: str, reason: str) -> None:
        if video_path in self.items:
            return
        if self.policy != "skip":
            raise BadVideoError(video_path, reason)
        from fvc_core.training.outputs import write_json

        self.items[video_path] = reason
        if self.writes:
            write_json(self.path, self.as_list())

    def as_list(self) -> list[dict[str, str]]:
        return [{"video_path": p, "reason": r} for p, r in self.items.items()]


@dataclass
class Environment:
    """What every fold shares: the device, precision, the loader and the run's videos."""

    device: torch.device
    amp_dtype: torch.dtype | None
    loader: Any
    sampler: Any
    paths: list[str]
    """Row -> video path (the loader's rows)."""
    row_of: dict[str, int]
    skipped: SkippedVideos
    seed: int
    progress: Any
    table_fingerprint: str = ""
    """splits.table_fingerprint of the run's table, written into each fold's metrics.json."""
    ranks: Any = None
    """``fvc_core.training.distributed.Ranks`` when the fold trains data-parallel; None: one process."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"trainer.device: {name!r} asked for, but torch sees no CUDA device here")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"trainer.device: {name!r} asked for, but MPS is not available here")
    return device


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for full precision."""
    if amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    if amp == "fp16":
        if device.type != "cuda":
            raise UserError(f"trainer.amp: fp16 needs a CUDA device (device is {device}); use bf16 or off")
        return torch.float16
    if amp == "bf16":
        return torch.bfloat16
    return None


def backbone_is_pretrained(model: nn.Module) -> bool:
    """The model's own word (a ``backbone_pretrained`` attribute); offering parameter_groups() alone
    says nothing about where the weights came from."""
    return getattr(model, "backbone_pretrained", False) is True


def resolved_backbone_lr(model: nn.Module, config: SupervisedConfig) -> tuple[float, str]:
    """The backbone's learning rate and why: the user's backbone_lr, else lr/100 for a backbone the
    model declares pretrained, else lr (a backbone trained from scratch learns like the head)."""
    if config.backbone_lr is not None:
        return config.backbone_lr, "trainer.backbone_lr"
    if backbone_is_pretrained(model):
        return config.lr * PRETRAINED_BACKBONE_LR_FACTOR, "pretrained backbone: lr/100"
    return config.lr, "trained from scratch: lr"


def parameter_groups(model: nn.Module, config: SupervisedConfig) -> list[dict[str, Any]]:
    """AdamW groups: the model's optional parameter_groups() backbone at its resolved rate, the rest at lr."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups_fn = getattr(model, "parameter_groups", None)
    if not callable(groups_fn):
        return [{"params": trainable, "lr": config.lr, "name": "head"}]
    declared = groups_fn()
    backbone = [p for p in declared.get("backbone", []) if p.requires_grad]
    in_backbone = {id(p) for p in backbone}
    head = [p for p in trainable if id(p) not in in_backbone]
    groups = [{"params": head, "lr": config.lr, "name": "head"}]
    if backbone:
        groups.append({"params": backbone, "lr": resolved_backbone_lr(model, config)[0], "name": "backbone"})
    return groups


def describe_rates(model: nn.Module, config: SupervisedConfig, groups: list[dict[str, Any]]) -> str:
    """One line of the peak learning rates and where the backbone's comes from."""
    parts = []
    for group in groups:
        if group["name"] == "head":
            label = "lr" if len(groups) == 1 else "head lr"
            parts.append(f"{label} {group['lr']:.3g} ({sum(p.numel() for p in group['params'])} parameters)")
        else:
            why = resolved_backbone_lr(model, config)[1]
            parts.append(f"{group['name']} lr {group['lr']:.3g} ({why}; "
                         f"{sum(p.numel() for p in group['params'])} parameters)")
    return ", ".join(parts)


class Objective:
    """Loss and fake-score of video logits: (N, 2) with softmax, or (N,)/(N, 1) with a sigmoid."""

    def __init__(self, class_weights: torch.Tensor | None):
        self.weights = class_weights

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if logits.ndim == 2 and logits.shape[1] == 2:
            return nn.functional.cross_entropy(logits, labels, weight=self.weights)
        if logits.ndim == 1 or (logits.ndim == 2 and logits.shape[1] == 1):
            target = labels.float()
            pos_weight = self.weights[1] / self.weights[0] if self.weights is not None else None
            return nn.functional.binary_cross_entropy_with_logits(logits.reshape(-1), target,
                                                                  pos_weight=pos_weight)
        raise UserError(f"model output of shape {tuple(logits.shape)}: the supervised trainer expects video "
                        "logits (N, 2) or (N, 1) for real/fake")

    @staticmethod
    def scores(logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        if logits.ndim == 2 and logits.shape[1] == 2:
            return torch.softmax(logits, dim=1)[:, 1]
        return torch.sigmoid(logits.reshape(-1))


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


class FoldTraining:
    """Trains and scores one fold; every state needed to resume goes into fold_dir/last.pt."""

    def __init__(self, job: Any, config: SupervisedConfig, env: Environment, fold: int,
                 parts: dict[str, list[tuple[int, int]]], fold_dir: Path, repeat: int = 0,
                 fold_in_repeat: int | None = None):
        """``fold``: the fold's number across the run (repeat * k + its index in the repeat when
        trainer.repeats > 1); it names the fold to trackers and seeds its training."""
        self.repeat = repeat
        self.fold_in_repeat = fold if fold_in_repeat is None else fold_in_repeat
        self.job = job
        self.cfg = config
        self.env = env
        self.fold = fold
        self.parts = parts  # part -> (row, label)
        self.fold_dir = Path(fold_dir)
        self.last_path = self.fold_dir / "last.pt"
        self.best_path = self.fold_dir / "model.pt"
        # The refit phase's own resume point: last.pt keeps the selection phase's end until the fold finishes.
        self.refit_path = self.fold_dir / "refit_last.pt"
        self.train_part = "train"
        self.labels = {row: lab for part in parts.values() for row, lab in part}
        self.ranks = env.ranks
        # One writer: rank 0 alone writes checkpoints and outputs and talks to trackers.
        self.writes = self.ranks is None or self.ranks.writes
        self.world = 1 if self.ranks is None else self.ranks.world

    # -- setup -----------------------------------------------------------------------------------
    def _build(self) -> None:
        cfg, env = self.cfg, self.env
        # The refit model starts from the same initial weights as the one whose epochs were counted.
        _seed_everything(clip_seed(env.seed, self.fold, 0, 2**31 - 1))
        self.model = self.job.build_model().to(env.device)
        groups = parameter_groups(self.model, cfg)
        self.rates = describe_rates(self.model, cfg, groups)
        self.optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        train_rows = [row for row, _ in self.parts[self.train_part]]
        self.batches_per_epoch = math.ceil(len(train_rows) / cfg.batch_size)
        # A step covers grad_accum batches of every rank: batch_size x grad_accum x workers videos.
        self.steps_per_epoch = math.ceil(self.batches_per_epoch / (cfg.grad_accum * self.world))
        warmup = int(round(cfg.warmup_epochs * self.steps_per_epoch))
        factor = warmup_cosine(warmup, cfg.epochs * self.steps_per_epoch) if cfg.lr_schedule == "cosine" \
            else warmup_constant(warmup)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)
        self.scaler = torch.amp.GradScaler(env.device.type,
                                           enabled=env.amp_dtype == torch.float16 and env.device.type == "cuda")
        weights = None
        if cfg.class_weights == "balanced":
            from sklearn.utils.class_weight import compute_class_weight

            y = np.array([lab for _, lab in self.parts[self.train_part]])
            weights = torch.tensor(compute_class_weight("balanced", classes=np.array([0, 1]), y=y),
                                   dtype=torch.float32, device=env.device)
        self.objective = Objective(weights)
        self.aggregation = Aggregation(cfg.aggregation, cfg.top_k)
        self.aggregation.check(self.model)
        es = cfg.early_stopping
        min_epochs = min(cfg.epochs, es.min_epochs or math.ceil(cfg.epochs / 2))
        self.stopping = EarlyStopping(es.metric, es.resolved_mode(), es.patience, es.min_delta,
                                      grace_epochs=cfg.warmup_epochs, min_epochs=min_epochs)
        self.history: list[dict[str, float]] = []
        self.step = 0
        self.start_epoch = 1

    def _load(self, path: Path) -> Any:
        """A checkpoint of this fold, or one line naming it and the way out."""
        try:
            state = checkpoint.load_safe(path, map_location=self.env.device)
        except checkpoint.CheckpointError as exc:
            raise checkpoint.CheckpointError(f"{exc}; {self._way_out()}") from None
        written_by = state.get("config_hash") if isinstance(state, dict) else None
        accepted = (self.job.run.config_hash, *getattr(self.job.run, "earlier_config_hashes", ()))
        if written_by not in accepted:
            raise checkpoint.CheckpointError(
                f"{path}: written by a run of another config (hash {written_by}, this run "
                f"{self.job.run.config_hash}); {self._way_out()}")
        return state

    def _way_out(self) -> str:
        return (f"delete {self.fold_dir} to train fold {self.fold} again from scratch, or run with --fresh to "
                "start the whole run over")

    def _resume(self) -> None:
        state = self._load(self.last_path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.stopping.load_state_dict(state["early_stopping"])
        self.history = state["history"]
        self.step = state["step"]
        self.start_epoch = state["epoch"] + 1
        checkpoint.set_rng_state(state["rng"])
        if self.stopping.best_epoch is not None:
            # Checked now rather than after the remaining epochs: a damaged best model would only
            # show when the fold ends.
            self._load(self.best_path)

    def _save_last(self, epoch: int) -> None:
        if not self.writes:
            return
        checkpoint.save_atomic({
            "config_hash": self.job.run.config_hash,
            "epoch": epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "early_stopping": self.stopping.state_dict(),
            "history": self.history,
            "rng": checkpoint.rng_state(),
        }, self.last_path)

    def _chosen_epoch(self) -> int | None:
        """The epoch whose model scores the test part: the best one, or with ``keep: last`` the last
        trained unless early stopping ended the fold."""
        if self.cfg.early_stopping.keep == "last" and not self.stopping.stopped and self.history:
            return int(self.history[-1]["epoch"])
        return self.stopping.best_epoch

    def _save_model(self, epoch: int, value: float | None = None, trained_on: str = "train",
                    chosen_by: str | None = None) -> None:
        from fvc_core.training.outputs import plain

        if not self.writes:
            return
        checkpoint.save_atomic({
            "trained_on": trained_on,
            "model_state_dict": self.model.state_dict(),
            "model_name": self.job.config.model.name,
            "config": plain(self.job.config.as_dict()),
            "config_hash": self.job.run.config_hash,
            "epoch": epoch,
            "fold": self.fold,
            "metric": chosen_by or (self.stopping.metric if value is not None else "refit: last epoch"),
            "metric_value": value,
        }, self.best_path)

    # -- passes ----------------------------------------------------------------------------------
    def _autocast(self):
        dtype = self.env.amp_dtype
        return torch.autocast(self.env.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    def _batches(self, keys: list[Key], label: str):
        """Batches of the loader over ``keys``, with the time spent waiting for each one."""
        env = self.env
        env.sampler.keys = keys
        env.progress.start_pass(label, math.ceil(len(keys) / self.cfg.batch_size))
        iterator = iter(env.loader)
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(iterator)
            except StopIteration:
                return
            waited = time.perf_counter() - t0
            for row, reason in batch.bad:
                env.skipped.handle(env.paths[row], reason)
            yield batch, waited

    def _known_bad(self, row: int) -> bool:
        return self.env.paths[row] in self.env.skipped.items

    def train_epoch(self, epoch: int) -> dict[str, float]:
        cfg, env = self.cfg, self.env
        rows = epoch_order([row for row, _ in self.parts[self.train_part]], env.seed, self.fold, epoch)
        # Training clips are asked for augmented; whether and how is the dataset's setting (data.augment).
        keys = [Key(r, True, clip_seed(env.seed, self.fold, epoch, r), self._known_bad(r)) for r in rows]
        if self.ranks is not None:
            return self._train_epoch_ranks(epoch, keys)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        n_batches = self.batches_per_epoch
        loss_sum, loss_n, waited, started = 0.0, 0, 0.0, time.perf_counter()
        label = f"fold {self.fold} {'refit ' if self.train_part == 'refit' else ''}epoch {epoch}"
        for index, (batch, wait) in enumerate(self._batches(keys, label)):
            waited += wait
            group_start = (index // cfg.grad_accum) * cfg.grad_accum
            # The last group of an epoch may be short: divide by its real size so every optimiser
            # step sees the mean gradient of the batches it covers.
            group_size = min(cfg.grad_accum, n_batches - group_start)
            value = self._backward(batch, group_size, f"fold {self.fold} epoch {epoch} batch {index + 1}")
            if value is not None:
                loss_sum += value * len(batch.rows)
                loss_n += len(batch.rows)
            if index + 1 == group_start + group_size:
                self._optimizer_step()
        return {"train_loss": loss_sum / loss_n if loss_n else math.nan,
                "epoch_seconds": time.perf_counter() - started, "data_wait_seconds": waited}

    def _backward(self, batch: Any, group_size: int, where: str, rank: str = "") -> float | None:
        """Forward and backward of one batch, its loss scaled by ``1 / group_size`` (the batches its
        optimiser step averages); the batch's loss, or None for a batch whose videos were all skipped."""
        if batch.videos is None:
            self.env.progress.step(None)
            return None
        videos = batch.videos.to(self.env.device, non_blocking=True)
        labels = batch.labels.to(self.env.device, non_blocking=True)
        with self._autocast():
            logits = self.model(videos)
        loss = self.objective.loss(logits, labels)
        value = float(loss.detach())
        if not math.isfinite(value):
            raise NonFiniteLossError(f"{where} (optimiser step {self.step + 1}{rank}): the loss is {value}; "
                                     "lower trainer.lr, or set trainer.amp=off")
        self.scaler.scale(loss / group_size).backward()
        self.env.progress.step(value)
        return value

    def _train_epoch_ranks(self, epoch: int, keys: list[Key]) -> dict[str, float]:
        """train_epoch of one rank of a data-parallel fold (fvc_core.training.distributed's schedule):
        global batch j of the epoch's order is rank j % N's; a step covers grad_accum x N batches and
        applies their mean gradient, summed over the ranks at the step."""
        from fvc_core.training.distributed import Ranks

        cfg, env, ranks = self.cfg, self.env, self.ranks
        if ranks.rank > 0:
            # Dropout of the other ranks must not repeat rank 0's masks; rank 0 keeps the stream of
            # one process (restored by resume from last.pt).
            torch.manual_seed(clip_seed(env.seed, self.fold, epoch, 2**31 - 2 - ranks.rank))
        b, n_batches = cfg.batch_size, self.batches_per_epoch
        mine = ranks.my_batches(n_batches)
        my_keys = [key for j in mine for key in keys[j * b:(j + 1) * b]]
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss_sum, loss_n, waited, started, stepped = 0.0, 0, 0.0, time.perf_counter(), 0
        label = f"fold {self.fold} {'refit ' if self.train_part == 'refit' else ''}epoch {epoch}"
        for index, (batch, wait) in enumerate(self._batches(my_keys, label)):
            waited += wait
            step, group_size = Ranks.step_size(n_batches, cfg.grad_accum, ranks.world, mine[index])
            # Divided by the batches of the whole step: the sum over the ranks is their mean.
            value = self._backward(batch, group_size, f"fold {self.fold} epoch {epoch} batch {mine[index] + 1}",
                                   f", rank {ranks.rank}")
            if value is not None:
                loss_sum += value * len(batch.rows)
                loss_n += len(batch.rows)
            last_of_step = index + 1 == len(mine) or Ranks.step_size(
                n_batches, cfg.grad_accum, ranks.world, mine[index + 1])[0] != step
            if last_of_step:
                self._optimizer_step()
                stepped += 1
        # The epoch's last step may hold no batch of this rank: it still takes part in it.
        while stepped < self.steps_per_epoch:
            self._optimizer_step()
            stepped += 1
        total, n = ranks.sum(loss_sum, loss_n)
        # Each rank's running statistics saw its own videos only: rank 0's, which model.pt and last.pt
        # keep, are every rank's from here on (what DDP's broadcast_buffers does before each forward).
        ranks.broadcast_buffers(self.model)
        self._share_skipped()
        return {"train_loss": total / n if n else math.nan,
                "epoch_seconds": time.perf_counter() - started, "data_wait_seconds": waited}

    def _share_skipped(self) -> None:
        """Every rank learns the videos the others found unreadable; rank 0 records them."""
        found = self.ranks.gather(dict(self.env.skipped.items))
        for items in found:
            for path, reason in items.items():
                self.env.skipped.handle(path, reason)

    def _optimizer_step(self) -> None:
        if self.ranks is not None:
            # Before unscaling: every rank then sees the same gradient, the same inf check and norm.
            self.ranks.all_reduce_gradients([p for p in self.model.parameters() if p.requires_grad])
        if self.cfg.max_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.max_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self.step += 1

    @torch.no_grad()
    def evaluate(self, part: str, shard: bool = False) -> tuple[list[int], list[float], float]:
        """Rows, fake scores and mean loss of a part, with the model in its own eval() behaviour.
        ``shard`` (data-parallel folds): each rank scores every N-th video, and every rank gets all
        of them back in the part's order."""
        keys = [Key(r, False, 0, self._known_bad(r)) for r, _ in self.parts[part]]
        if shard and self.ranks is not None:
            every = keys
            keys = keys[self.ranks.rank::self.ranks.world]
        self.model.eval()
        rows: list[int] = []
        scores: list[float] = []
        # Each row's frame fake scores, when the model gives them (read by run() for the test part).
        self.frame_scores: list[list[float]] | None = None
        loss_sum = 0.0
        for batch, _ in self._batches(keys, f"fold {self.fold} {part}"):
            if batch.videos is not None:
                videos = batch.videos.to(self.env.device, non_blocking=True)
                labels = batch.labels.to(self.env.device, non_blocking=True)
                with self._autocast():
                    logits, video_scores, frames = self.aggregation.score(self.model, videos)
                loss_sum += float(self.objective.loss(logits, labels)) * len(batch.rows)
                rows += batch.rows
                scores += video_scores.cpu().tolist()
                if frames is not None:
                    self.frame_scores = self.frame_scores or []
                    self.frame_scores += frames.cpu().tolist()
            self.env.progress.step(None)
        if shard and self.ranks is not None:
            loss_sum_here = loss_sum
            scored: dict[int, float] = {}
            loss_sum = 0.0
            for their_rows, their_scores, their_loss in self.ranks.gather((rows, scores, loss_sum_here)):
                scored.update(zip(their_rows, their_scores, strict=True))
                loss_sum += their_loss
            rows = [key.row for key in every if key.row in scored]
            scores = [scored[row] for row in rows]
            self._share_skipped()
        # Weights that diverged in the last steps of an epoch (its loss still finite) score NaN: said
        # here, as the trainer's own error, rather than by a metric library refusing the NaN.
        if any(math.isnan(score) for score in scores):
            raise NonFiniteLossError(f"fold {self.fold} {part}: the model scores NaN (its weights diverged); "
                                     "lower trainer.lr, or set trainer.amp=off")
        return rows, scores, loss_sum / len(rows) if rows else math.nan

    def _rates(self) -> dict[str, float]:
        """The learning rates in force: ``lr`` (the head's) and ``lr_<group>`` for the others."""
        return {"lr" if group["name"] == "head" else f"lr_{group['name']}": float(group["lr"])
                for group in self.optimizer.param_groups}

    # -- refit -----------------------------------------------------------------------------------
    def _refit(self, state: Any) -> list[dict[str, float]]:
        """Train a fresh model on train + val for the chosen number of epochs, on the schedule of a full
        ``epochs``-long run (so epoch e has the lr it had when it was chosen), keep its last epoch as
        model.pt. Checkpoints to refit_last.pt every epoch; ``state`` is that checkpoint on resume."""
        cfg = self.cfg
        epochs = self._chosen_epoch() or cfg.epochs
        selection = {"history": self.history, "early_stopping": self.stopping.state_dict()}
        self.parts["refit"] = self.parts["train"] + self.parts["val"]
        self.train_part = "refit"
        self._build()  # a fresh model, optimiser and schedule sized to train + val
        self.stopping.load_state_dict(selection["early_stopping"])
        history: list[dict[str, float]] = []
        start = 1
        if state is not None:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            if state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            history, self.step, start = state["refit_history"], state["step"], state["epoch"] + 1
            checkpoint.set_rng_state(state["rng"])
        self.env.progress.start_refit(self.fold, len(self.parts["refit"]), epochs, start)
        for epoch in range(start, epochs + 1):
            stats = self.train_epoch(epoch)
            rates = self._rates()
            row = {"epoch": epoch, "train_loss": stats["train_loss"], "step": self.step, **rates}
            history.append(row)
            if self.writes:
                self._save_refit(epoch, history, selection)
            self.env.progress.end_epoch(self.fold, epoch, stats["epoch_seconds"], stats["data_wait_seconds"],
                                        self.steps_per_epoch, rates, of=epochs, phase="refit")
        self.history = selection["history"]
        self._save_model(epochs, trained_on="train+val")
        return history

    def _save_refit(self, epoch: int, history: list[dict[str, float]], selection: dict[str, Any]) -> None:
        checkpoint.save_atomic({
            "config_hash": self.job.run.config_hash,
            "phase": "refit",
            "epoch": epoch,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "refit_history": history,
            "selection": selection,
            "rng": checkpoint.rng_state(),
        }, self.refit_path)

    def _fit_temperature(self) -> dict[str, Any]:
        """trainer.calibration: temperature: T fitted on the validation part's scores of the model that
        scores the test part (``fvc_core.training.calibration``)."""
        from fvc_core.training.calibration import fit_temperature

        rows, scores, _ = self.evaluate("val")
        labels = [self.labels[r] for r in rows]
        return {"method": "temperature", "temperature": fit_temperature(labels, scores), "fitted_on": "validation",
                "n_fitted_on": len(rows), "applied_to": "each test video's logit log(p / (1 - p)), divided by T"}

    # -- the fold --------------------------------------------------------------------------------
    def run(self):
        from fvc_core.training import outputs
        from fvc_core.training.calibration import apply_temperature, calibration_metrics
        from fvc_core.training.metrics import compute_metrics

        cfg = self.cfg
        self._build()
        refit_state = self._load(self.refit_path) if cfg.refit and self.refit_path.exists() else None
        if refit_state is not None:
            # Killed in the refit phase: the selection's outcome travels in refit_last.pt.
            self.stopping.load_state_dict(refit_state["selection"]["early_stopping"])
            self.history = refit_state["selection"]["history"]
            self.start_epoch = cfg.epochs + 1
        elif self.last_path.exists():
            self._resume()
        sizes = {part: len(rows) for part, rows in self.parts.items()}
        if refit_state is None:
            self.env.progress.start_fold(self.fold, sizes, self.start_epoch, self.rates)
        for epoch in range(self.start_epoch, cfg.epochs + 1):
            if self.stopping.stopped:
                break
            stats = self.train_epoch(epoch)
            # Sharded over the ranks of a data-parallel fold; each rank gets every score back and takes
            # the same early-stopping decision from them.
            rows, scores, val_loss = self.evaluate("val", shard=True)
            labels = [self.labels[r] for r in rows]
            metrics: dict[str, float] = {"epoch": epoch, "train_loss": stats["train_loss"], "val_loss": val_loss,
                       **validation_metrics(labels, scores, cfg.threshold)}
            rates = self._rates()
            metrics.update(rates)
            metrics["epoch_seconds"] = stats["epoch_seconds"]
            metrics["data_wait_seconds"] = stats["data_wait_seconds"]
            metrics["torch_threads"] = torch.get_num_threads()  # what the epoch ran with (trainer.num_threads)
            # The optimiser step at the epoch's end: trackers catching up from history.json need it.
            metrics["step"] = self.step
            self.history.append(metrics)
            value = metrics[self.stopping.metric]
            if self.stopping.update(value, epoch, tiebreak=val_loss):
                self._save_model(epoch, value=value)
            self._save_last(epoch)
            # Timings stay in history.json and the progress line; trackers get what was learned.
            learned = {k: v for k, v in metrics.items() if k not in ("epoch", "step", *RUN_FACTS)}
            if self.writes:
                self.job.trackers.log_epoch(self.fold, epoch, learned, self.step)
            self.env.progress.end_epoch(self.fold, epoch, stats["epoch_seconds"], stats["data_wait_seconds"],
                                        self.steps_per_epoch, rates)

        chosen = self._chosen_epoch()
        if not cfg.refit and chosen != self.stopping.best_epoch and refit_state is None:
            # keep=last: the model in hand is the last epoch's (trained, or resumed from last.pt).
            self._save_model(chosen, chosen_by="last epoch")
        refit_history: list[dict[str, float]] = []
        if cfg.refit:
            refit_history = self._refit(refit_state)
        if not self.writes:
            return None  # rank 0 alone scores the test part and writes the fold's files
        best = self._load(self.best_path)
        self.model.load_state_dict(best["model_state_dict"])
        # Fitted on the validation part before the test part is even scored: the test cannot choose T.
        temperature = self._fit_temperature() if cfg.calibration == "temperature" else None
        rows, scores, _ = self.evaluate("test")
        labels = [self.labels[r] for r in rows]
        paths = outputs.fold_paths(self.fold_dir)
        raw = scores
        if temperature is not None:
            scores = apply_temperature(raw, temperature["temperature"])
        outputs.write_predictions(paths["predictions.parquet"], [self.env.paths[r] for r in rows], labels,
                                  scores, self.fold, self.frame_scores,
                                  uncalibrated=raw if temperature is not None else None,
                                  calibration=f"temperature {temperature['temperature']:.6g}"
                                  if temperature else "none")
        outputs.write_json(paths["history.json"], self.history)
        test = compute_metrics(labels, scores, cfg.threshold)
        test["calibration"] = temperature or {"method": "none"}
        if temperature is not None:
            test.update(temperature=temperature["temperature"],
                        **{f"uncalibrated_{k}": v for k, v in calibration_metrics(labels, raw).items()})
        test.update(outputs.scoring_record(labels, self.frame_scores, self.aggregation, self.model, self.job.run))
        # best_epoch is the epoch whose model scored the test part (refit: how many epochs it trained);
        # best_metric_epoch the one the validation metric liked best: they differ only with keep=last.
        test.update(fold=self.fold, best_epoch=chosen, best_metric=self.stopping.metric,
                    best_metric_value=self.stopping.best, best_metric_epoch=self.stopping.best_epoch,
                    kept=cfg.early_stopping.keep if chosen != self.stopping.best_epoch else "best",
                    table_fingerprint=self.env.table_fingerprint)
        # Which model scored the test part: a reader comparing runs must know whether the validation
        # videos were trained on.
        if cfg.refit:
            test.update(scored_model="refit", scored_model_trained_on=["train", "val"],
                        refit_epochs=len(refit_history),
                        refit_train_loss=[row["train_loss"] for row in refit_history])
        else:
            test.update(scored_model="best_epoch", scored_model_trained_on=["train"])
        if cfg.repeats > 1:
            test.update(repeat=self.repeat, fold_in_repeat=self.fold_in_repeat, seed=self.env.seed)
        outputs.write_json(paths["metrics.json"], test)  # last: its presence marks the fold finished
        checkpoint.remove(self.last_path)
        checkpoint.remove(self.refit_path)
        return outputs.fold_result(self.fold, self.fold_dir, test, self.history, chosen,
                                   self.repeat, self.fold_in_repeat)
