"""Where a backbone's weights come from: a local file, the caches on this machine, or (asked for) the hub.

Only ``pretrained: download`` reaches the network. A file is read with safetensors or
``torch.load(weights_only=True)``; timm's own checkpoint filter of the architecture (position
embeddings resampled to another input size, OpenAI CLIP's layout converted) is applied as timm does
when it loads published weights. Every failure is one line naming the key and the file.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from fvc_core.contract import UserError, one_line

# A download that cannot reach the hub fails in seconds instead of waiting on a dead connection.
NETWORK_TIMEOUT_S = "10"


def read_state_dict(path: Path, key: str = "model.weights") -> dict[str, torch.Tensor]:
    """A mapping of parameter names to tensors from ``path``; fvc checkpoints and timm training
    checkpoints are unwrapped, and an fvc model's ``backbone.`` prefix is dropped."""
    if not path.is_file():
        raise UserError(f"{key}: {path}: no such file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state: Any = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"{key}: {path}: not a state dict that loads safely (safetensors, or torch.load with "
                        f"weights_only=True): {one_line(exc, 160, with_type=False)}") from None
    for wrapper in ("model_state_dict", "state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(wrapper), dict):
            state = state[wrapper]
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise UserError(f"{key}: {path}: not a state dict (a mapping of parameter names to tensors)")
    if all(k.startswith("backbone.") for k in state):
        state = {k.removeprefix("backbone."): v for k, v in state.items()}
    return state


def _classifier_keys(model: nn.Module) -> set[str]:
    names = model.pretrained_cfg.get("classifier") or ()
    names = (names,) if isinstance(names, str) else tuple(names)
    return {k for k in model.state_dict() if any(k.startswith(n + ".") for n in names)}


def load_into(model: nn.Module, state: dict[str, torch.Tensor], where: str) -> None:
    """Load ``state`` into a timm ``model``: every backbone tensor must be there with its shape; the
    classifier is kept from the file only when its shape fits. ``where``: ``key: file`` for the error line."""
    filter_fn = getattr(sys.modules.get(type(model).__module__), "checkpoint_filter_fn", None)
    if callable(filter_fn):
        try:
            state = filter_fn(state, model)
        except Exception as exc:
            raise UserError(f"{where}: timm could not adapt it to {model.pretrained_cfg.get('architecture')}: "
                            f"{one_line(exc, 160)}") from None
    own = model.state_dict()
    head = _classifier_keys(model)
    state = {k: v for k, v in state.items() if not (k in head and k in own and v.shape != own[k].shape)}
    wrong = [k for k, v in state.items() if k in own and v.shape != own[k].shape]
    missing = sorted(set(own) - set(state) - head)
    extra = sorted(set(state) - set(own))
    if wrong or missing or extra:
        what = "; ".join(part for part in (
            f"{len(wrong)} of another shape ({', '.join(wrong[:3])})" if wrong else "",
            f"{len(missing)} missing ({', '.join(missing[:3])})" if missing else "",
            f"{len(extra)} unknown ({', '.join(extra[:3])})" if extra else "") if part)
        arch = model.pretrained_cfg.get("architecture", type(model).__name__)
        raise UserError(f"{where}: does not fit {arch}: {what}")
    model.load_state_dict(state, strict=False)


def cached_file(model: nn.Module) -> Path | None:
    """The published weights of ``model``'s architecture where they already are on this machine (the
    Hugging Face cache, then torch hub's): never a network call."""
    cfg = model.pretrained_cfg
    hub_id = cfg.get("hf_hub_id")
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        names = [cfg.get("hf_hub_filename")] if cfg.get("hf_hub_filename") else []
        for name in [*names, "model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"]:
            found = try_to_load_from_cache(hub_id, name)
            if isinstance(found, str) and Path(found).is_file():
                return Path(found)
    url = cfg.get("url")
    if url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
        if path.is_file():
            return path
    return None


@contextlib.contextmanager
def _network_timeouts() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in ("HF_HUB_ETAG_TIMEOUT", "HF_HUB_DOWNLOAD_TIMEOUT")}
    for k in saved:
        os.environ.setdefault(k, NETWORK_TIMEOUT_S)
    try:
        import huggingface_hub.constants as constants

        old = (constants.HF_HUB_ETAG_TIMEOUT, constants.HF_HUB_DOWNLOAD_TIMEOUT)
        constants.HF_HUB_ETAG_TIMEOUT = int(os.environ["HF_HUB_ETAG_TIMEOUT"])
        constants.HF_HUB_DOWNLOAD_TIMEOUT = int(os.environ["HF_HUB_DOWNLOAD_TIMEOUT"])
        try:
            yield
        finally:
            constants.HF_HUB_ETAG_TIMEOUT, constants.HF_HUB_DOWNLOAD_TIMEOUT = old
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _hub_reachable(timm: Any, arch: str) -> None:
    """One request, no retries, within the timeout: huggingface_hub retries a dead connection five times
    with growing waits (about a minute offline); this says so in seconds instead."""
    import urllib.error
    import urllib.request

    import huggingface_hub.constants as constants

    cfg = timm.models.get_pretrained_cfg(arch)
    url = constants.ENDPOINT if cfg is not None and cfg.hf_hub_id else (cfg.url if cfg is not None else None)
    if not url:
        return  # timm's own error names the missing source
    timeout = float(os.environ.get("HF_HUB_ETAG_TIMEOUT", NETWORK_TIMEOUT_S))
    try:
        urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout).close()
    except urllib.error.HTTPError:
        pass  # an answer: the host is there
    except (OSError, ValueError) as exc:
        raise UserError(f"model.pretrained: download: cannot reach {url} ({one_line(exc, 120, with_type=False)}); "
                        "without a network, give a local file as model.weights, or use pretrained: cache") from None


def load_weights(timm: Any, model: nn.Module, arch: str, kwargs: dict[str, Any], weights: Path | None,
                 pretrained: str) -> str:
    """Load the configured weights into the timm network ``model`` (built with ``kwargs``); returns where
    they came from."""
    if weights is not None:
        load_into(model, read_state_dict(weights), f"model.weights: {weights}")
        return str(weights)
    if pretrained == "cache":
        found = cached_file(model)
        if found is None:
            cfg = model.pretrained_cfg
            where = " or ".join(w for w in (f"hf://{cfg['hf_hub_id']}" if cfg.get("hf_hub_id") else "",
                                            cfg.get("url") or "") if w) or "nowhere: timm lists none"
            raise UserError(f"model.pretrained: cache: {arch}'s published weights are not in this machine's "
                            f"caches (from {where}); pretrained: download fetches them, or give a local file as "
                            "model.weights")
        load_into(model, read_state_dict(found, "model.pretrained"), f"model.pretrained: {found}")
        return str(found)
    assert pretrained == "download", pretrained
    with _network_timeouts():
        _hub_reachable(timm, arch)
    try:
        with _network_timeouts():
            published = timm.create_model(arch, pretrained=True, **kwargs)
    except Exception as exc:
        raise UserError(f"model.pretrained: download: could not get {arch}'s published weights: "
                        f"{one_line(exc, 200)}; or give a local file as model.weights") from None
    model.load_state_dict(published.state_dict())
    return f"{arch}'s published weights (downloaded)"
