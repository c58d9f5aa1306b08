"""Checkpoints: written atomically, read with ``weights_only=True`` so a file never runs code.

Everything saved is tensors, dicts, lists, tuples, str, numbers, bools or None.
"""

from __future__ import annotations

import os
import pickle
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fvc_core.errors import UserError


class CheckpointError(UserError):
    """A checkpoint that cannot be read safely; names the file."""


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then os.replace: a crash leaves the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_safe(path: Path, map_location: str | torch.device = "cpu") -> Any:
    """torch.load(weights_only=True); anything else inside (code, arbitrary objects) is refused."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        found = [line.strip() for line in text.splitlines() if "unsupported global" in line.lower()]
        if found:
            raise CheckpointError(
                f"{path}: refused to load: it holds more than weights and plain values, and loading it "
                f"could run code ({found[0][:160]})"
            ) from None
        raise CheckpointError(f"{path}: not a readable checkpoint (unpickling failed)") from None
    except (RuntimeError, EOFError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({first[:160]})") from None


def rng_state() -> dict[str, Any]:
    """torch, CUDA, numpy and python RNG states, in plain types (numpy arrays become lists)."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]),
                  int(np_state[3]), float(np_state[4])],
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, (tuple, list)) else value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value
