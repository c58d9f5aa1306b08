"""The ``metadata`` dataset: what table() gives the trainer, and the one-line errors for bad tables."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
import torch
from fvc_loaders.config import MetadataConfig
from fvc_loaders.dataset import MetadataDataset
from fvc_loaders.reader import read_clip

from fvc_core.errors import BadVideoError, ConfigError, UserError
from fvc_core.plugins import get_registry
from tests.loaders.videos import index_of, make_video


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """A data folder: real/a.mp4, real/b.mp4, fake/a_swap.mp4, fake/b_swap.mp4 (12 frames each)."""
    root = tmp_path_factory.mktemp("data")
    for rel in ("real/a", "real/b", "fake/a_swap", "fake/b_swap"):
        (root / rel).parent.mkdir(exist_ok=True)
        make_video(root / f"{rel}.mp4", frames=12, width=96, height=64)
    return root


def write(root: Path, columns: dict, name: str = "metadata.parquet") -> Path:
    path = root / name
    pl.DataFrame(columns).write_parquet(path)
    return path


def dataset(table: Path, **keys) -> MetadataDataset:
    return MetadataDataset(MetadataConfig(metadata=table, **keys))


GOOD = {
    "video_path": ["real/a.mp4", "fake/a_swap.mp4", "real/b.mp4", "fake/b_swap.mp4"],
    "label": ["real", "fake", "REAL", "Fake"],
    "source_id": ["a", "a", "b", "b"],
    "quality": ["c23", "c23", "c40", "c40"],
}


def test_table_resolves_paths_maps_labels_and_keeps_other_columns(videos):
    table = dataset(write(videos, GOOD), group_column="source_id").table()

    assert table.columns[:3] == ["video_path", "label", "group"]
    assert table["video_path"].to_list() == [str(videos.resolve() / p) for p in GOOD["video_path"]]
    assert all(Path(p).is_file() for p in table["video_path"])
    assert table["label"].to_list() == [0, 1, 0, 1]
    assert table["group"].to_list() == ["a", "a", "b", "b"]
    assert table["quality"].to_list() == GOOD["quality"]
    assert "source_id" not in table.columns  # it became `group`


def test_absolute_paths_integer_labels_and_no_group_column(videos, tmp_path):
    absolute = [str(videos / p) for p in GOOD["video_path"]]
    table = dataset(write(tmp_path, {"video_path": absolute, "label": [0, 1, 0, 1]})).table()

    assert table["video_path"].to_list() == [str(Path(p).resolve()) for p in absolute]
    assert table["label"].to_list() == [0, 1, 0, 1]
    assert table["group"].to_list() == table["video_path"].to_list()  # each video is its own group


def test_custom_label_names_and_columns(videos):
    table_path = write(videos, {"file": GOOD["video_path"], "y": ["original", "deepfake"] * 2}, "custom.parquet")
    table = dataset(table_path, video_column="file", label_column="y",
                    labels={"original": 0, "deepfake": 1}).table()
    assert table["label"].to_list() == [0, 1, 0, 1]
    assert set(table.columns) == {"video_path", "label", "group"}


def test_a_tables_own_group_column_is_used_unless_grouping_is_turned_off(videos):
    # `fvc index --layout` writes a `group` column: leaving it out would let identities straddle splits.
    table = dataset(write(videos, {**GOOD, "group": ["a", "a", "b", "b"]}, "grouped.parquet")).table()
    assert table["group"].to_list() == ["a", "a", "b", "b"]
    off = dataset(write(videos, {**GOOD, "group": ["a", "a", "b", "b"]}, "grouped.parquet"), group_column="").table()
    assert off["group"].to_list() == off["video_path"].to_list()


def test_a_missing_group_value_makes_the_video_its_own_group(videos):
    table = dataset(write(videos, {**GOOD, "source_id": ["a", "a", None, None]}), group_column="source_id").table()
    assert table["group"].to_list()[:2] == ["a", "a"]
    assert table["group"].to_list()[2:] == table["video_path"].to_list()[2:]


@pytest.mark.parametrize(
    ("columns", "keys", "expected"),
    [
        ({"path": ["real/a.mp4", "fake/a_swap.mp4"], "label": [0, 1]}, {},
         "no column 'video_path' (columns: path, label; data.video_column names another)"),
        ({**GOOD}, {"group_column": "source"}, "no column 'source'"),
        ({"video_path": ["real/a.mp4", "fake/a_swap.mp4", "real/b.mp4"], "label": ["real", "deepfake", "orig"]},
         {}, "column 'label' has unknown labels 'deepfake', 'orig' (accepted: 'real', 'fake', 0, 1)"),
        ({"video_path": ["real/a.mp4", "fake/a_swap.mp4"], "label": [0, 2]}, {},
         "column 'label' has values other than 0 (real) and 1 (fake): 2.0"),
        ({"video_path": ["real/a.mp4", "real/b.mp4"], "label": ["real", "real"]}, {},
         "every video is real (0); a detector needs both"),
        ({"video_path": ["real/a.mp4", "./real/../real/a.mp4", "fake/a_swap.mp4"], "label": [0, 0, 1]}, {},
         "lists the same video twice: './real/../real/a.mp4', 'real/a.mp4'"),
        ({"video_path": ["real/a.mp4", None], "label": [0, 1]}, {}, "column 'video_path' is empty in rows 1"),
        ({"video_path": ["real/a.mp4", "fake/a_swap.mp4"], "label": [0, None]}, {},
         "column 'label' is empty in rows 1"),
        ({"video_path": [], "label": []}, {}, "the table has no rows"),
    ],
    ids=["video-column", "group-column", "unknown-label", "bad-integer", "one-class", "duplicate", "null-path",
         "null-label", "empty"],
)
def test_bad_tables_fail_with_one_line_naming_table_and_column(tmp_path, columns, keys, expected):
    # The videos do not exist: the table is judged before anything is decoded.
    table_path = write(tmp_path, columns)
    with pytest.raises(UserError) as err:
        dataset(table_path, **keys).table()
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{table_path}: ")
    assert expected in message


def test_missing_and_unreadable_tables(tmp_path):
    with pytest.raises(UserError, match=r"nope\.parquet: metadata table not found"):
        dataset(tmp_path / "nope.parquet").table()
    garbage = tmp_path / "garbage.parquet"
    garbage.write_text("video_path,label\n")
    with pytest.raises(UserError, match=r"garbage\.parquet: cannot read the metadata table as Parquet"):
        dataset(garbage).table()


def test_a_csv_table_as_a_spreadsheet_saves_it(videos, tmp_path, capsys):
    # Excel's "CSV UTF-8": a byte-order mark, CRLF line ends, a quoted path holding a comma and a space.
    odd = tmp_path / "clips" / "take 1, final.mp4"
    odd.parent.mkdir()
    make_video(odd, frames=12, width=96, height=64)
    rows = [f'"{odd}",Fake,a', f"{videos / 'real/a.mp4'},real,a", f"{videos / 'real/b.mp4'},REAL,b",
            f"{videos / 'fake/b_swap.mp4'},fake,b"]
    table = tmp_path / "meta.csv"
    table.write_bytes("\ufeffvideo_path,label,source_id\r\n".encode() + "\r\n".join(rows).encode() + b"\r\n")
    read = dataset(table, group_column="source_id").table()
    assert read["video_path"].to_list() == [str(odd), *(str(videos / p) for p in ("real/a.mp4", "real/b.mp4",
                                                                                   "fake/b_swap.mp4"))]
    assert read["label"].to_list() == [1, 0, 0, 1] and read["group"].to_list() == ["a", "a", "b", "b"]
    from fvc_core.cli import main

    assert main(["verify", str(table), "num_frames=2", "size=16", "-j", "1"]) == 0
    assert "all 4 videos read" in capsys.readouterr().out
    # Saved in a legacy code page: one line naming the file, not a traceback.
    legacy = tmp_path / "legacy.csv"
    legacy.write_bytes("video_path,label\nvidéo.mp4,real\n".encode("cp1252"))
    with pytest.raises(UserError, match=r"legacy\.csv: cannot read the metadata table as CSV .*save it as UTF-8"):
        dataset(legacy).table()


def unicode_csv(videos: Path, labels: tuple[str, ...]) -> str:
    return "video_path,label\r\n" + "".join(f"{videos / p},{lab}\r\n" for p, lab in
                                            zip(GOOD["video_path"], labels, strict=True))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_a_csv_table_saved_as_unicode_text_with_its_mark_reads_as_in_utf8(videos, tmp_path, encoding):
    text = unicode_csv(videos, ("réal", "fake", "réal", "fake"))
    utf8 = tmp_path / "utf8.csv"
    utf8.write_text(text, encoding="utf-8")
    # Python's utf-16 and utf-32 write a byte-order mark in the machine's order; -be needs one by hand.
    wide = tmp_path / f"{encoding}.csv"
    wide.write_bytes(("\ufeff" if encoding.endswith("-be") else "").encode(encoding) + text.encode(encoding))
    labels = {"réal": 0, "fake": 1}
    assert dataset(wide, labels=labels).table().equals(dataset(utf8, labels=labels).table())


def test_a_utf16_csv_table_without_its_mark_is_one_clean_line_naming_it(videos, tmp_path, capsys):
    from fvc_core.cli import main

    # Without the mark the bytes read as UTF-8 with a NUL beside every letter; they used to be printed.
    unmarked = tmp_path / "unmarked.csv"
    unmarked.write_bytes(unicode_csv(videos, ("real", "fake", "real", "fake")).encode("utf-16-le"))
    assert main(["verify", str(unmarked), "num_frames=2", "size=16", "-j", "1"]) == 2
    assert capsys.readouterr().err == (
        f"error: {unmarked}: cannot read the metadata table as CSV (not UTF-8 text: NUL bytes, UTF-16 without a "
        "byte-order mark?); save it as UTF-8 CSV with a header row\n")


def test_read_video_samples_uniformly_and_letterboxes(videos):
    ds = dataset(write(videos, GOOD), num_frames=4, size=32)
    clip = ds.read_video(ds.table()["video_path"][0])
    assert clip.dtype == torch.uint8
    assert clip.shape == (4, 3, 32, 32)
    # 12 frames, 4 slice centres -> frames 1, 4, 7, 10 (each frame draws its own index).
    assert [index_of(frame) for frame in clip] == [1, 4, 7, 10]


def test_augmentation_only_when_asked_and_enabled(videos):
    table_path = write(videos, GOOD)
    path = str(videos / "real/a.mp4")
    plain = read_clip(path, 4, 32)
    augmented = read_clip(path, 4, 32, augment_seed=7)

    on = dataset(table_path, num_frames=4, size=32, augment=True)
    assert torch.equal(on.read_video(path), plain)  # evaluation clips are never augmented
    assert torch.equal(on.read_video(path, augment=True, seed=7), augmented)
    off = dataset(table_path, num_frames=4, size=32)  # the default: measured to cost more than it gives
    assert torch.equal(off.read_video(path, augment=True, seed=7), plain)


def test_unreadable_video_is_a_bad_video_error_naming_the_file(videos, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 10)
    ds = dataset(write(videos, GOOD))
    for path in (broken, tmp_path / "missing.mp4"):
        with pytest.raises(BadVideoError) as err:
            ds.read_video(path)
        assert str(path) in str(err.value)
    assert ds.on_bad_video == "fail"


def test_protocol_says_how_clips_are_made(videos):
    protocol = dataset(write(videos, GOOD), num_frames=5, size=48, augment=False).protocol()
    assert protocol["dataset"] == "metadata"
    assert protocol | {"num_frames": 5, "size": 48, "sampler": "uniform-time", "letterbox": True,
                       "augment": False} == protocol


def test_through_the_registry(videos):
    registry = get_registry()
    ds = registry.create("datasets", "metadata", {"metadata": str(write(videos, GOOD)), "on_bad_video": "skip"})
    assert ds.on_bad_video == "skip"
    assert ds.table().height == 4
    with pytest.raises(ConfigError) as err:
        registry.create("datasets", "metadata", {"metadata": "x.parquet", "num_frame": 8, "on_bad_video": "ignore"})
    assert "num_frame: unknown key (did you mean 'num_frames'?)" in str(err.value)
    assert "on_bad_video" in str(err.value)
    with pytest.raises(ConfigError, match="label classes must be 0"):
        registry.create("datasets", "metadata", {"metadata": "x.parquet", "labels": {"real": 0, "fake": 2}})
