"""The synthetic dataset: real H.264 files and an ordinary table, deterministic, written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch
from fvc_loaders import synthetic
from fvc_loaders.reader import iter_letterboxed_frames, probe, read_clip
from fvc_loaders.synthetic import make_synthetic_dataset

from fvc_core import ownership
from fvc_core.errors import UserError
from fvc_core.plugins import get_registry

SMALL = {"videos": 3, "frames": 8, "frame_size": 64}


def frames_of(path: str | Path) -> np.ndarray:
    return np.stack(list(iter_letterboxed_frames(path, 64))).astype(np.int16)


def test_writes_h264_videos_and_an_ordinary_metadata_table(tmp_path):
    table_path = make_synthetic_dataset(tmp_path / "syn", seed=1, **SMALL)

    assert table_path == tmp_path / "syn" / "metadata.parquet"
    table = pl.read_parquet(table_path)
    assert table.columns == ["video_path", "label", "source_id"]
    assert table["label"].to_list() == ["real", "fake"] * 3
    # Every fake carries the group of the real clip it was made from.
    assert table["source_id"].to_list() == ["src_0000", "src_0000", "src_0001", "src_0001", "src_0002", "src_0002"]
    for rel in table["video_path"]:
        assert not Path(rel).is_absolute()
        info = probe(table_path.parent / rel)
        assert (info.codec, info.width, info.height) == ("h264", 64, 64)
        assert len(list(iter_letterboxed_frames(table_path.parent / rel, 64))) == 8
    assert not list((tmp_path / "syn").rglob(".*tmp*"))


def test_a_fake_is_its_real_clip_with_a_local_flickering_patch(tmp_path):
    root = make_synthetic_dataset(tmp_path, seed=2, **SMALL).parent
    for i in range(3):
        real = frames_of(root / f"real/src_{i:04d}.mp4")
        fake = frames_of(root / f"fake/src_{i:04d}.mp4")
        changed = np.abs(real - fake).max(axis=-1) > 24  # per pixel, per frame
        share = changed.mean(axis=(1, 2))
        # Each frame: a patch of about a third of the side (~1/9 of the area) changes, the rest does not.
        assert ((share > 0.03) & (share < 0.2)).all(), share
        rows, cols = np.nonzero(changed[0])
        assert np.ptp(rows) < 0.45 * 64 and np.ptp(cols) < 0.45 * 64  # one compact region
        # The blend flickers: the patch's difference to the real clip changes from frame to frame.
        strength = [np.abs(real[t] - fake[t])[changed[t]].mean() for t in range(8)]
        assert np.ptp(strength) > 2


def test_same_seed_same_data_other_seed_other_data(tmp_path):
    a = make_synthetic_dataset(tmp_path / "a", seed=5, **SMALL)
    b = make_synthetic_dataset(tmp_path / "b", seed=5, **SMALL)
    c = make_synthetic_dataset(tmp_path / "c", seed=6, **SMALL)

    assert pl.read_parquet(a).equals(pl.read_parquet(b))
    for rel in pl.read_parquet(a)["video_path"]:
        assert (a.parent / rel).read_bytes() == (b.parent / rel).read_bytes()
        assert torch.equal(read_clip(a.parent / rel, 4, 32), read_clip(b.parent / rel, 4, 32))
    assert (a.parent / "real/src_0000.mp4").read_bytes() != (c.parent / "real/src_0000.mp4").read_bytes()


def test_existing_data_is_reused_and_other_settings_regenerate(tmp_path):
    table_path = make_synthetic_dataset(tmp_path, seed=0, **SMALL)
    stamp = table_path.stat().st_mtime_ns
    assert make_synthetic_dataset(tmp_path, seed=0, **SMALL) == table_path
    assert table_path.stat().st_mtime_ns == stamp

    make_synthetic_dataset(tmp_path, seed=0, **{**SMALL, "videos": 4})
    assert pl.read_parquet(table_path).height == 8


def test_an_interrupted_generation_is_redone_not_half_used(tmp_path, monkeypatch):
    real_encode = synthetic._encode
    calls = []

    def dying_encode(path, pictures):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(path)
        real_encode(path, pictures)

    monkeypatch.setattr(synthetic, "_encode", dying_encode)
    with pytest.raises(KeyboardInterrupt):
        make_synthetic_dataset(tmp_path, seed=0, **SMALL)
    assert not (tmp_path / "metadata.parquet").exists()
    assert not synthetic.is_complete(tmp_path, seed=0, **SMALL)

    monkeypatch.setattr(synthetic, "_encode", real_encode)
    table_path = make_synthetic_dataset(tmp_path, seed=0, **SMALL)
    clean = make_synthetic_dataset(tmp_path / "clean", seed=0, **SMALL)
    for rel in pl.read_parquet(table_path)["video_path"]:
        assert (tmp_path / rel).read_bytes() == (clean.parent / rel).read_bytes()


def test_synthetic_dataset_behaves_like_metadata(tmp_path):
    ds = get_registry().create("datasets", "synthetic",
                               {"root": str(tmp_path / "syn"), "seed": 3, "num_frames": 4, "size": 48, **SMALL})
    table = ds.table()  # generates on first use
    assert table.columns == ["video_path", "label", "group"]
    assert table["label"].to_list() == [0, 1] * 3
    assert table["group"].n_unique() == 3
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in table["video_path"])
    clip = ds.read_video(table["video_path"][1])
    assert clip.shape == (4, 3, 48, 48) and clip.dtype == torch.uint8
    assert ds.protocol()["synthetic"]["seed"] == 3
    assert ds.on_bad_video == "fail"


def test_odd_frame_size_is_refused(tmp_path):
    from fvc_core.errors import ConfigError

    with pytest.raises(ConfigError, match="frame_size: .*even"):
        get_registry().create("datasets", "synthetic", {"root": str(tmp_path), "frame_size": 65})


def users_video_folder(root: Path) -> dict[Path, bytes]:
    """A user's own dataset: real/ and fake/ clips and their 12-row metadata.parquet."""
    from tests.loaders.videos import make_video

    rows = []
    for label in ("real", "fake"):
        (root / label).mkdir(parents=True)
        for i in range(6):
            rel = f"{label}/clip_{i}.mp4"
            make_video(root / rel, frames=4, width=32, height=32)
            rows.append((rel, label))
    pl.DataFrame(rows, schema=["video_path", "label"], orient="row").write_parquet(root / "metadata.parquet")
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_users_video_folder_as_root_is_refused_and_left_as_it_was(tmp_path):
    root = tmp_path / "my_videos"
    before = users_video_folder(root)
    ds = get_registry().create("datasets", "synthetic", {"root": str(root), "seed": 0, **SMALL})
    with pytest.raises(UserError) as refused:
        ds.table()
    message = str(refused.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{root}: holds files fvc did not make") and "data.name: metadata" in message
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before  # nothing added or changed
    assert pl.read_parquet(root / "metadata.parquet").height == 12


def test_a_folder_generated_before_markers_is_reused_and_regenerated(tmp_path):
    table_path = make_synthetic_dataset(tmp_path / "syn", seed=0, **SMALL)
    (tmp_path / "syn" / ownership.MARKER).unlink()  # as the version before markers left it
    stamp = table_path.stat().st_mtime_ns
    assert make_synthetic_dataset(tmp_path / "syn", seed=0, **SMALL) == table_path
    assert table_path.stat().st_mtime_ns == stamp
    make_synthetic_dataset(tmp_path / "syn", seed=0, **{**SMALL, "videos": 4})  # other settings: its own to redo
    assert pl.read_parquet(table_path).height == 8
    assert (tmp_path / "syn" / ownership.MARKER).is_file()
