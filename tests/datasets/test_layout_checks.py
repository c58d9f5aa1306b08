"""``fvc index DIR --layout NAME``: nothing under DIR is dropped in silence, and the official split and
metadata files are read strictly (one line naming the file and the bad item), on the miniatures."""

from __future__ import annotations

import json
import shutil

import polars as pl
import pytest

from tests.datasets import miniature
from tests.datasets.test_layouts import errors, index


def warnings(capsys) -> list[str]:
    out = capsys.readouterr()
    return [line for line in (out.out + out.err).splitlines() if line.startswith("warning: left out")]


@pytest.mark.parametrize("layout, make, strays", [
    ("celebdf", miniature.celebdf, ["Celeb-real/more/id3_0000.mp4"]),
    # An unknown compression folder and a masks folder: neither is read by the layout.
    ("ffpp", miniature.ffpp, ["manipulated_sequences/Deepfakes/c30/videos/000_003.mp4",
                              "manipulated_sequences/Deepfakes/masks/videos/000_003.mp4"]),
    ("dfdc", miniature.dfdc, ["dfdc_train_part_0/extra/aaa.mp4"]),
    ("dfd", miniature.dfd, ["original_sequences/actors/c23/videos/old/01__exit_phone_room.mp4"]),
])
def test_a_video_the_layout_does_not_read_is_named_in_a_warning(tmp_path, capsys, layout, make, strays):
    root = make(tmp_path / layout)
    assert index(root, layout, tmp_path / "clean.parquet") == 0
    assert warnings(capsys) == []  # the dataset as published: nothing left out

    for stray in strays:
        miniature.tiny_video(root / stray, fake=False)
    out = tmp_path / "table.parquet"
    assert index(root, layout, out) == 0
    [line] = warnings(capsys)
    assert line.startswith(f"warning: left out {len(strays)} video")
    assert f"that layout {layout} does not read: " in line
    for stray in strays:
        assert stray in line
    # The table is the published dataset's, the strays left out.
    assert pl.read_parquet(out).equals(pl.read_parquet(tmp_path / "clean.parquet"))


def test_many_videos_left_out_are_counted_by_folder(tmp_path, capsys):
    root = miniature.ffpp(tmp_path / "ffpp")
    masks = root / "manipulated_sequences/Deepfakes/masks/videos"
    for name in ("000_003", "003_000", "001_002"):
        miniature.tiny_video(masks / f"{name}.mp4", fake=False)
    miniature.dfd(root)  # shipped in the same download, read by --layout dfd
    assert index(root, "ffpp", tmp_path / "t.parquet") == 0
    [line] = warnings(capsys)
    assert line.endswith("does not read: 2 in manipulated_sequences/DeepFakeDetection/c23/videos/, "
                         "3 in manipulated_sequences/Deepfakes/masks/videos/, "
                         "3 in original_sequences/actors/c23/videos/")
    assert "left out 8 videos" in line


@pytest.mark.parametrize("item", [["000"], ["003", "000", "x"], ["000", "000"], ["0", "3"], ["000", 3], "000_003"])
def test_an_ffpp_split_item_that_is_not_a_pair_of_ids_is_named(tmp_path, capsys, item):
    root = miniature.ffpp(tmp_path / "ffpp")
    (root / "splits/val.json").write_text(json.dumps([["004", "005"], item]))
    assert index(root, "ffpp", tmp_path / "t.parquet") == 2
    assert (f"splits/val.json: item 1 is {json.dumps(item)}, not a pair of two different three-digit "
            'identities like ["071", "054"]') in "\n".join(errors(capsys))
    assert not (tmp_path / "t.parquet").exists()


def test_a_celebdf_test_list_with_two_labels_for_a_video_or_a_video_outside_the_layout(tmp_path, capsys):
    root = miniature.celebdf(tmp_path / "celeb")
    listed = (root / "List_of_testing_videos.txt").read_text()
    (root / "List_of_testing_videos.txt").write_text(listed + "0 YouTube-real/00170.mp4\n")
    assert index(root, "celebdf", tmp_path / "t.parquet") == 2
    assert ("List_of_testing_videos.txt:4: lists YouTube-real/00170.mp4 as 0, but an earlier line lists it "
            "with the other label") in "\n".join(errors(capsys))

    miniature.tiny_video(root / "Celeb-real/more/id3_0000.mp4", fake=False)
    (root / "List_of_testing_videos.txt").write_text(listed + "1 Celeb-real/more/id3_0000.mp4\n")
    assert index(root, "celebdf", tmp_path / "t.parquet") == 2
    assert ("List_of_testing_videos.txt: lists Celeb-real/more/id3_0000.mp4, which is not a video of the layout "
            "(not directly in Celeb-real, YouTube-real, Celeb-synthesis)") in "\n".join(errors(capsys))
    assert not (tmp_path / "t.parquet").exists()


@pytest.mark.parametrize("change, message", [
    ({"split": 5}, "bbb.mp4: split must be one of train, val, test (or absent), got 5"),
    ({"split": "training"}, "bbb.mp4: split must be one of train, val, test (or absent), got 'training'"),
])
def test_a_dfdc_entry_with_an_unknown_split_is_named(tmp_path, capsys, change, message):
    root = miniature.dfdc(tmp_path / "dfdc")
    path = root / "dfdc_train_part_0/metadata.json"
    meta = json.loads(path.read_text())
    meta["bbb.mp4"].update(change)
    path.write_text(json.dumps(meta))
    assert index(root, "dfdc", tmp_path / "t.parquet") == 2
    assert f"dfdc_train_part_0/metadata.json: {message}" in "\n".join(errors(capsys))


def test_a_dfdc_real_entry_that_names_an_original_is_named(tmp_path, capsys):
    root = miniature.dfdc(tmp_path / "dfdc")
    path = root / "dfdc_train_part_1/metadata.json"
    meta = json.loads(path.read_text())
    meta["ddd.mp4"]["original"] = "aaa.mp4"
    path.write_text(json.dumps(meta))
    assert index(root, "dfdc", tmp_path / "t.parquet") == 2
    assert ("dfdc_train_part_1/metadata.json: ddd.mp4: a REAL entry with an original ('aaa.mp4'); "
            "only a FAKE is made from one") in "\n".join(errors(capsys))
    shutil.rmtree(root)
