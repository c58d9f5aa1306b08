"""Feeding clips to the loop: a DataLoader over the dataset plugin's ``read_video``.

Workers decode ahead of the step (``num_workers``, ``prefetch_factor``) and stay up for
the whole run. Every item is addressed by a key ``(row, augment, seed, skip)`` chosen
in the main process, so the order and the augmentation of each clip depend only on
(seed, fold, epoch, video) and never on which worker decoded it. A video the dataset
cannot read comes back as a marker, not an exception, so the main process applies the
``on_bad_video`` policy and records it.
"""

from __future__ import annotations

import functools
import os
import random
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from fvc_core.children import die_with_parent
from fvc_core.errors import BadVideoError


class Key(NamedTuple):
    row: int
    augment: bool
    seed: int
    skip: bool = False
    """Already known to be bad: answer with the marker without decoding again."""


@dataclass
class Item:
    row: int
    label: int
    video: torch.Tensor | None
    error: str | None = None


@dataclass
class Batch:
    rows: list[int]
    labels: torch.Tensor
    videos: torch.Tensor | None
    """(N, T, C, H, W) as the dataset returned it, or None when every video of the batch was bad."""
    bad: list[tuple[int, str]] = field(default_factory=list)
    """(row, reason) of the videos that could not be read."""

    def pin_memory(self) -> Batch:
        videos = self.videos.pin_memory() if self.videos is not None else None
        return Batch(self.rows, self.labels.pin_memory(), videos, self.bad)


def clip_seed(seed: int, fold: int, epoch: int, row: int) -> int:
    """The augmentation seed of one video in one epoch of one fold."""
    return int(np.random.SeedSequence([seed, fold, epoch, row]).generate_state(1)[0])


def epoch_order(rows: list[int], seed: int, fold: int, epoch: int) -> list[int]:
    """Training order of an epoch: a permutation that depends only on (seed, fold, epoch)."""
    rng = np.random.default_rng([seed, fold, epoch, 0x5EED])
    return [rows[i] for i in rng.permutation(len(rows))]


class ClipSource(Dataset):
    """Row -> clip of the dataset plugin; the rows are the run's videos in a fixed order."""

    def __init__(self, dataset: Any, paths: list[str], labels: list[int]):
        self.dataset = dataset
        self.paths = paths
        self.labels = labels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key: Key) -> Item:
        label = self.labels[key.row]
        if key.skip:
            return Item(key.row, label, None, "skipped")
        try:
            video = self.dataset.read_video(self.paths[key.row], augment=key.augment, seed=key.seed)
        except BadVideoError as exc:
            return Item(key.row, label, None, exc.reason)
        return Item(key.row, label, video)


class KeySampler(Sampler):
    """Yields the keys set for the next pass; the loop sets them before each epoch or evaluation."""

    def __init__(self) -> None:
        self.keys: list[Key] = []

    def __iter__(self):
        return iter(list(self.keys))

    def __len__(self) -> int:
        return len(self.keys)


def collate(items: list[Item]) -> Batch:
    good = [it for it in items if it.video is not None]
    videos = torch.stack([torch.as_tensor(it.video) for it in good]) if good else None
    labels = torch.tensor([it.label for it in good], dtype=torch.long)
    bad = [(it.row, it.error or "unreadable") for it in items if it.video is None]
    return Batch([it.row for it in good], labels, videos, bad)


def _quiet_fd_sharing(default: Callable[..., Any]) -> Callable[..., Any]:
    """A worker's ``sys.excepthook`` that drops what multiprocessing's fd-passing thread
    (``resource_sharer._serve``, which reports through ``sys.excepthook`` itself) raises when the
    training process stopped mid-handshake (SIGTERM, Ctrl-C: a broken pipe): teardown noise that
    printed a traceback under fvc's one line. A sharing failure while the run goes on still surfaces
    in the training process, as a DataLoader error."""

    def hook(exc_type: Any, exc: Any, tb: Any) -> None:
        frame = tb
        while frame is not None:
            if frame.tb_frame.f_code.co_filename.endswith(os.path.join("multiprocessing", "resource_sharer.py")):
                return
            frame = frame.tb_next
        default(exc_type, exc, tb)

    return hook


def _start_worker(worker_id: int, *, parent: int) -> None:
    # A worker only serves the training process: if that one is killed outright (SIGKILL, out of
    # memory) the worker goes at once instead of decoding on and holding the files it inherited.
    die_with_parent(parent)
    # SIGTERM to the whole process group (Slurm, `kill -- -PGID`) reaches the workers too. torch's
    # own handler exits quietly only when the training process sends it, and otherwise dies by the
    # signal, which the training process then reports as a crashed worker (a traceback, exit 1).
    # Treated as Ctrl-C instead: torch's worker loop ends quietly on KeyboardInterrupt, and the
    # training process, which got the signal too, saves what it has and says so.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    sys.excepthook = _quiet_fd_sharing(sys.excepthook)
    # Plugins that use numpy's or python's global RNG get a worker seed derived from the run's seed.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def make_loader(source: ClipSource, *, batch_size: int, num_workers: int, prefetch_factor: int, seed: int,
                pin_memory: bool) -> tuple[DataLoader, KeySampler]:
    """One loader for the whole run; its workers persist across epochs, evaluations and folds."""
    sampler = KeySampler()
    # An explicit generator: the loader must not draw from the global torch RNG, which the model's
    # dropout uses and which checkpoints restore on resume.
    generator = torch.Generator().manual_seed(seed)
    extra: dict[str, Any] = {}
    if num_workers > 0:
        extra = {"prefetch_factor": prefetch_factor, "persistent_workers": True,
                 "worker_init_fn": functools.partial(_start_worker, parent=os.getpid())}
    loader = DataLoader(source, batch_size=batch_size, sampler=sampler, collate_fn=collate,
                        num_workers=num_workers, generator=generator, pin_memory=pin_memory, **extra)
    return loader, sampler
