"""data.cache on real encoded files: later reads skip decoding, a changed video or setting is never
served stale, augmentation comes after the cache, the folder stays under its limit and is fvc's own."""

from __future__ import annotations

import os

import numpy as np
import polars as pl
import pytest
import torch

from fvc_core.errors import UserError
from tests.loaders.videos import index_of, make_video

reader = pytest.importorskip("fvc_loaders.reader")
from fvc_loaders.augment import augment_clip  # noqa: E402
from fvc_loaders.config import MetadataConfig  # noqa: E402
from fvc_loaders.dataset import MetadataDataset  # noqa: E402


@pytest.fixture
def decodes(monkeypatch):
    """Paths the reader decodes (a spy around the real sampling, which still runs)."""
    calls: list[str] = []
    real = reader._sample

    def spy(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(reader, "_sample", spy)
    return calls


@pytest.fixture
def table(tmp_path):
    make_video(tmp_path / "a", frames=12)
    make_video(tmp_path / "b", frames=12, corner="bottom_right")  # other content: its own entry
    pl.DataFrame({"video_path": ["a.mp4", "b.mp4"], "label": [0, 1]}).write_parquet(tmp_path / "m.parquet")
    return tmp_path / "m.parquet"


def dataset(table, cache, **keys) -> MetadataDataset:
    keys.setdefault("size", 32)
    if keys.get("sampler") != "window":
        keys.setdefault("num_frames", 4)
    return MetadataDataset(MetadataConfig(metadata=table, cache=cache, **keys))


def test_a_second_read_is_served_without_decoding(table, tmp_path, decodes):
    data = dataset(table, tmp_path / "cache")
    video = str(table.parent / "a.mp4")
    first = data.read_video(video)
    second = data.read_video(video)
    assert decodes == [video]
    assert torch.equal(first, second) and second.dtype == torch.uint8 and second.shape == (4, 3, 32, 32)
    assert torch.equal(second, reader.read_clip(video, 4, 32))  # what decoding gives
    assert (tmp_path / "cache" / ".fvc-owned").is_file()


def test_a_changed_video_is_decoded_again_even_with_its_old_time_stamps(table, tmp_path, decodes):
    data = dataset(table, tmp_path / "cache")
    video = table.parent / "a.mp4"
    before = data.read_video(str(video))
    st = video.stat()
    # Same name, same size class, different frames (1 frame per index becomes 3); old mtime put back.
    make_video(tmp_path / "other", frames=36).replace(video)
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = data.read_video(str(video))
    assert len(decodes) == 2
    assert [index_of(f) for f in after] != [index_of(f) for f in before]
    assert torch.equal(after, reader.read_clip(str(video), 4, 32))


def test_another_setting_is_another_entry(table, tmp_path, decodes):
    video = str(table.parent / "a.mp4")
    dataset(table, tmp_path / "cache").read_video(video)
    bigger = dataset(table, tmp_path / "cache", size=48).read_video(video)
    more = dataset(table, tmp_path / "cache", num_frames=6).read_video(video)
    windows = dataset(table, tmp_path / "cache", sampler="window", clip_len=4,
                      clips_per_video=2).read_video(video)
    assert len(decodes) == 4
    assert bigger.shape == (4, 3, 48, 48) and more.shape == (6, 3, 32, 32) and windows.shape == (2, 4, 3, 32, 32)


def test_augmentation_is_drawn_after_the_cache(table, tmp_path, decodes):
    data = dataset(table, tmp_path / "cache", augment=True)
    video = str(table.parent / "a.mp4")
    plain = data.read_video(video)  # evaluation: no augmentation
    epoch1 = data.read_video(video, augment=True, seed=1)
    epoch2 = data.read_video(video, augment=True, seed=2)
    assert decodes == [video]
    assert torch.equal(epoch1, augment_clip(plain, 1)) and torch.equal(epoch2, augment_clip(plain, 2))
    assert not torch.equal(epoch1, epoch2)


def test_training_windows_move_every_epoch_so_they_are_not_cached(table, tmp_path, decodes):
    data = dataset(table, tmp_path / "cache", sampler="window", clip_len=4)
    video = str(table.parent / "a.mp4")
    data.read_video(video, augment=True, seed=1)
    data.read_video(video, augment=True, seed=1)
    data.read_video(video)
    data.read_video(video)
    assert len(decodes) == 3  # two training reads, one evaluation read kept


def test_the_folder_stays_under_its_limit_dropping_the_least_recently_used(table, tmp_path):
    clip_bytes = 4 * 3 * 32 * 32
    limit_gb = 2.5 * clip_bytes / 1e9  # room for about two entries of the four settings read below
    keep = dataset(table, tmp_path / "cache", cache_max_gb=limit_gb)
    video = str(table.parent / "a.mp4")
    keep.read_video(video)
    for size in (33, 34, 35):
        keep.read_video(video)  # used again just now: the last to go
        dataset(table, tmp_path / "cache", size=size, cache_max_gb=limit_gb).read_video(video)
    entries = list((tmp_path / "cache" / "clips").glob("*/*.clip"))
    assert sum(p.stat().st_size for p in entries) <= 2.5 * clip_bytes * 1.1
    assert keep._cache.entry(video, keep.clip_settings()).is_file()


def test_a_folder_fvc_did_not_make_is_refused_in_one_line(table, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    with pytest.raises(UserError) as err:
        dataset(table, mine)
    assert str(err.value).startswith(f"{mine}: holds files fvc did not make") and "\n" not in str(err.value)
    assert [p.name for p in mine.iterdir()] == ["thesis.tex"]


def test_workers_share_one_cache(table, tmp_path):
    from torch.utils.data import DataLoader

    data = dataset(table, tmp_path / "cache")
    paths = [str(table.parent / n) for n in ("a.mp4", "b.mp4")] * 3

    class Reads(torch.utils.data.Dataset):
        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            return data.read_video(paths[i])

    loader = DataLoader(Reads(), batch_size=None, num_workers=2)
    clips = list(loader)
    assert all(torch.equal(c, reader.read_clip(p, 4, 32)) for c, p in zip(clips, paths, strict=True))
    assert len(list((tmp_path / "cache" / "clips").glob("*/*.clip"))) == 2
    assert not [p for p in (tmp_path / "cache").rglob(".*.tmp")]  # no temporary file left behind
    np.testing.assert_array_equal(data.read_video(paths[0]).numpy(), clips[0].numpy())


def test_damaged_entries_and_digest_memos_are_decoded_again_never_served(table, tmp_path, decodes):
    cache = tmp_path / "cache"
    data = dataset(table, cache)
    a, b = str(table.parent / "a.mp4"), str(table.parent / "b.mp4")
    truth = {v: data.read_video(v) for v in (a, b)}
    entries = sorted((cache / "clips").rglob("*.clip"))
    memos = sorted((cache / "digests").glob("*.txt"))
    assert len(entries) == 2 and len(memos) == 2
    # What a full disk or another tool leaves: an empty entry, one cut short, one of another type.
    entries[0].write_bytes(b"")
    with open(entries[1], "wb") as f:
        np.save(f, np.zeros((4, 3, 32, 32), dtype=np.float32))
    decodes.clear()
    fresh = dataset(table, cache)
    for v in (a, b):
        assert torch.equal(fresh.read_video(v), truth[v])
    assert sorted(decodes) == [a, b]
    # Emptied digest memos would give both videos one key: b would be served a's clip.
    for memo in memos:
        memo.write_text("")
    fresh = dataset(table, cache)
    for v in (a, b, a, b):
        assert torch.equal(fresh.read_video(v), truth[v])


def _zeros_as_the_tester_wrote_them(entry, other):
    with open(entry, "wb") as f:  # a plain .npy of zeros, the clip's own shape and dtype
        np.save(f, np.zeros((4, 3, 32, 32), dtype=np.uint8))


def _clip_bytes_zeroed_in_place(entry, other):
    data = bytearray(entry.read_bytes())  # magic, checksum and .npy header kept; the pixels black
    data[-4 * 3 * 32 * 32:] = bytes(4 * 3 * 32 * 32)
    entry.write_bytes(bytes(data))


def _another_entrys_file_copied_over_it(entry, other):
    entry.write_bytes(other.read_bytes())  # a whole, valid entry: of the other video


@pytest.mark.parametrize("damage", [_zeros_as_the_tester_wrote_them, _clip_bytes_zeroed_in_place,
                                    _another_entrys_file_copied_over_it])
def test_an_entry_overwritten_with_a_clip_of_the_same_shape_is_decoded_again_and_repaired(
        table, tmp_path, decodes, caplog, damage):
    cache = tmp_path / "cache"
    a, b = str(table.parent / "a.mp4"), str(table.parent / "b.mp4")
    first = dataset(table, cache)
    for v in (a, b):
        first.read_video(v)
    entry, other = first._cache.entry(a, first.clip_settings()), first._cache.entry(b, first.clip_settings())
    damage(entry, other)
    decodes.clear()

    served = dataset(table, cache).read_video(a)
    fresh = reader.read_clip(a, 4, 32)  # what decoding gives, no cache anywhere
    assert torch.equal(served, fresh) and served.float().std() > 0
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warned) == 1 and warned[0].startswith(f"{entry}: damaged cache entry, decoding again")
    # Repaired: the next reader is served the same clip from the entry, without decoding.
    decodes.clear()
    assert torch.equal(dataset(table, cache).read_video(a), fresh) and decodes == []
