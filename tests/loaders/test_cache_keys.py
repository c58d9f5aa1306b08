"""data.cache keyed by every clip setting, for both samplers: a clip read through a cache filled under
other settings equals the clip decoded without any cache (issue 37: the window sampler's key without
`size` served the old entries after a change of size, and no test varied a key with windows)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from tests.loaders.videos import make_video

pytest.importorskip("fvc_loaders.reader")
from fvc_loaders import decoders  # noqa: E402
from fvc_loaders.config import ClipConfig, MetadataConfig  # noqa: E402
from fvc_loaders.dataset import MetadataDataset  # noqa: E402

UNIFORM = {"sampler": "uniform", "num_frames": 4, "size": 32}
WINDOW = {"sampler": "window", "clip_len": 4, "size": 32}

# (base, the keys changed): each changes what a clip holds, so each must be another entry.
CHANGES = [
    (UNIFORM, {"num_frames": 6}),
    (UNIFORM, {"size": 48}),
    (UNIFORM, {"decoder": "mirrored"}),
    (UNIFORM, {"sampler": "window", "clip_len": 4}),
    (WINDOW, {"size": 48}),
    (WINDOW, {"fps": 12.0}),
    (WINDOW, {"fps": 12.5, "clip_len": 4}),
    (WINDOW, {"clip_len": 6}),
    (WINDOW, {"clips_per_video": 3}),
    (WINDOW, {"decoder": "mirrored"}),
    (WINDOW, {"sampler": "uniform", "num_frames": 4}),
]
# The keys of the clip settings that do not change an unaugmented clip: no part of the cache's key.
NOT_SHAPING = {"on_bad_video", "cache", "cache_max_gb", "augment"}


class Mirrored:
    """A second decoder: PyAV's pictures, mirrored left to right (what another library could differ by)."""

    def read(self, path, plan, size):
        return [np.ascontiguousarray(p[:, ::-1]) for p in decoders.PyAVDecoder().read(path, plan, size)]


@pytest.fixture(autouse=True)
def mirrored(monkeypatch):
    monkeypatch.setitem(decoders._BUILT, "mirrored", Mirrored())


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("keys")
    make_video(folder / "a", frames=24, fps=24, width=48, height=32)  # frames carry their index
    pl.DataFrame({"video_path": ["a.mp4", "a2.mp4"], "label": [0, 1]}).write_parquet(folder / "m.parquet")
    return folder / "m.parquet"


def dataset(table, cache, keys) -> MetadataDataset:
    return MetadataDataset(MetadataConfig(metadata=table, cache=cache, **keys))


def test_every_key_of_the_clip_settings_is_varied_here_or_shapes_no_clip():
    varied = {k for _, change in CHANGES for k in change}
    assert set(ClipConfig.model_fields) == varied | NOT_SHAPING


@pytest.mark.parametrize("base, change", CHANGES, ids=[f"{b['sampler']}-{'-'.join(map(str, c.items()))}"
                                                       for b, c in CHANGES])
def test_a_changed_setting_is_served_what_decoding_gives_not_the_old_entry(table, tmp_path, base, change):
    video = str(table.parent / "a.mp4")
    cache = tmp_path / "cache"
    before = dataset(table, cache, base).read_video(video)  # the entry of the old settings
    keys = {**base, **change}
    keys.pop("clip_len" if keys["sampler"] == "uniform" else "num_frames", None)  # the other sampler's
    uncached = dataset(table, None, keys).read_video(video)
    assert not (before.shape == uncached.shape and torch.equal(before, uncached))  # the change shows
    for _ in range(2):  # the miss, then the hit of the new entry
        assert torch.equal(dataset(table, cache, keys).read_video(video), uncached)
    assert torch.equal(dataset(table, cache, base).read_video(video), before)  # the old entry still served
