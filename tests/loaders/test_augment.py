"""Clip augmentation: reproducible from a seed, one set of parameters per clip, safe in DataLoader workers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fvc_loaders.augment import augment_clip, draw_params
from fvc_loaders.reader import read_clip
from torch.utils.data import DataLoader, Dataset

from tests.loaders.videos import index_of, make_video, marker_corner


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return make_video(tmp_path_factory.mktemp("aug") / "clip", frames=12, width=80, height=80)


def test_same_seed_same_clip_and_other_seeds_differ(video):
    clip = read_clip(video, 4, 48)
    first = augment_clip(clip, 7)
    assert torch.equal(first, augment_clip(clip, 7))
    assert torch.equal(first, read_clip(video, 4, 48, augment_seed=7))
    others = [augment_clip(clip, seed) for seed in range(8, 16)]
    assert sum(not torch.equal(first, other) for other in others) == 8
    assert first.shape == clip.shape and first.dtype == torch.uint8


def test_off_without_a_seed(video):
    plain = read_clip(video, 4, 48)
    assert torch.equal(plain, read_clip(video, 4, 48, augment_seed=None))


def test_one_set_of_parameters_for_every_frame():
    frame = torch.randint(0, 256, (3, 40, 40), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    clip = frame.expand(6, 3, 40, 40).contiguous()
    for seed in range(5):
        out = augment_clip(clip, seed)
        assert all(torch.equal(out[0], out[t]) for t in range(1, 6))


def test_flip_crop_brightness_do_what_they_say(video):
    clip = read_clip(video, 4, 48)
    flipped = next(s for s in range(50) if draw_params(s, 48, 48).flip)
    kept = next(s for s in range(50) if not draw_params(s, 48, 48).flip)
    assert {marker_corner(f) for f in augment_clip(clip, flipped)} == {"top_right"}
    assert {marker_corner(f) for f in augment_clip(clip, kept)} == {"top_left"}
    # Mild: which frame it is can still be read (the grey level moves by brightness only).
    p = draw_params(kept, 48, 48)
    assert 0.85 <= p.brightness <= 1.15 and 0.85 <= p.contrast <= 1.15
    assert abs(p.shift_y) <= 0.08 * 48 and abs(p.shift_x) <= 0.08 * 48


def test_pixels_are_moved_not_resampled():
    """A shift keeps fine artefacts (seams, grain) sharp: no interpolation touches the pixels."""
    gen = torch.Generator().manual_seed(1)
    clip = torch.randint(40, 216, (2, 3, 50, 50), dtype=torch.uint8, generator=gen)  # no clamping at 0/255
    seed = next(s for s in range(500) if (p := draw_params(s, 50, 50)).shift_y > 0 and p.shift_x > 0)
    p = draw_params(seed, 50, 50)
    out = augment_clip(clip, seed).float()
    if p.flip:
        out = out.flip(-1)
    moved = clip[:, :, : 50 - p.shift_y, : 50 - p.shift_x].float()
    region = out[:, :, p.shift_y :, p.shift_x :]
    # Up to the brightness/contrast map (affine) and rounding, the region is the input, pixel for pixel.
    design = torch.stack([moved.flatten(), torch.ones(moved.numel())], 1)
    a, b = torch.linalg.lstsq(design, region.flatten()[:, None]).solution.flatten()
    assert (region - (a * moved + b)).abs().max() <= 1.0


def test_global_random_state_neither_used_nor_changed(video):
    clip = read_clip(video, 3, 32)
    np.random.seed(1)
    torch.manual_seed(1)
    a = augment_clip(clip, 3)
    np_state, torch_state = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    np.random.seed(2)
    torch.manual_seed(2)
    np_state2, torch_state2 = np.random.get_state()[1].copy(), torch.get_rng_state().clone()
    b = augment_clip(clip, 3)
    assert torch.equal(a, b)
    assert np.array_equal(np.random.get_state()[1], np_state2) and torch.equal(torch.get_rng_state(), torch_state2)
    assert not np.array_equal(np_state, np_state2) and not torch.equal(torch_state, torch_state2)


def test_input_is_not_modified(video):
    clip = read_clip(video, 3, 32)
    before = clip.clone()
    augment_clip(clip, 11)
    assert torch.equal(clip, before)


def test_rejects_a_clip_of_the_wrong_kind():
    with pytest.raises(ValueError):
        augment_clip(torch.zeros(2, 3, 8, 8), 0)  # float, not uint8
    with pytest.raises(ValueError):
        augment_clip(torch.zeros(3, 8, 8, dtype=torch.uint8), 0)


class _Clips(Dataset):
    """Each item opens its own file: nothing shared between worker processes."""

    def __init__(self, paths, augment: bool):
        self.paths = paths
        self.augment = augment

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return read_clip(self.paths[i], 4, 32, augment_seed=100 + i if self.augment else None)


@pytest.mark.parametrize("augment", [False, True])
def test_dataloader_workers_give_the_same_clips(tmp_path, augment):
    paths = [make_video(tmp_path / f"v{i}", frames=8 + i, width=64, height=48) for i in range(4)]
    direct = [_Clips(paths, augment)[i] for i in range(4)]
    loader = DataLoader(_Clips(paths, augment), batch_size=1, num_workers=2)
    loaded = [batch[0] for batch in loader]
    assert all(torch.equal(a, b) for a, b in zip(direct, loaded, strict=True))
    if not augment:
        assert [index_of(c[-1]) for c in loaded] == [7, 7, 8, 9]  # last of 4 targets in 8..11 frames
