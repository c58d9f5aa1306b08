"""``fvc index DIR --layout NAME``: each dataset's own layout and split files, in miniature."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from fvc_loaders.config import MetadataConfig
from fvc_loaders.dataset import MetadataDataset

from fvc_core.cli import main
from tests.datasets import miniature


def index(root: Path, layout: str, out: Path) -> int:
    return main(["index", str(root), "--layout", layout, "-o", str(out)])


def rows(out: Path) -> dict[str, dict]:
    """The table by video path relative to the table's folder."""
    return {r["video_path"]: r for r in pl.read_parquet(out).iter_rows(named=True)}


def errors(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]


def test_ffpp_official_splits_and_identity_groups(tmp_path):
    root = miniature.ffpp(tmp_path / "ffpp")
    out = tmp_path / "ffpp.parquet"
    assert index(root, "ffpp", out) == 0

    table = pl.read_parquet(out)
    assert table.columns == ["video_path", "label", "group", "method", "compression", "split", "source_video"]
    assert pl.read_parquet_metadata(out)["fvc_layout"] == "ffpp"
    by = rows(out)
    fake = by["ffpp/manipulated_sequences/Deepfakes/c23/videos/000_003.mp4"]
    assert (fake["label"], fake["method"], fake["compression"], fake["split"]) == ("fake", "Deepfakes", "c23", "train")
    # 000_003 is 000's frames with 003's face: its source is original 000, a row of the same table.
    assert fake["source_video"] == "ffpp/original_sequences/youtube/c23/videos/000.mp4"
    assert by["ffpp/manipulated_sequences/FaceSwap/c23/videos/003_000.mp4"]["source_video"] == \
        "ffpp/original_sequences/youtube/c23/videos/003.mp4"
    assert all(r["source_video"] in by for r in by.values() if r["label"] == "fake")
    assert {r["source_video"] for r in by.values() if r["label"] == "real"} == {None}
    # The pair's originals and its fakes both ways are one group; another pair is another group.
    group = {p: r["group"] for p, r in by.items()}
    assert group["ffpp/original_sequences/youtube/c23/videos/000.mp4"] == fake["group"]
    assert group["ffpp/original_sequences/youtube/c23/videos/003.mp4"] == fake["group"]
    assert group["ffpp/manipulated_sequences/FaceSwap/c23/videos/003_000.mp4"] == fake["group"]
    assert group["ffpp/original_sequences/youtube/c23/videos/001.mp4"] != fake["group"]
    # No group straddles a split, and the official splits are kept.
    assert table.group_by("group").agg(pl.col("split").n_unique())["split"].max() == 1
    assert dict(table["split"].value_counts().iter_rows()) == {"train": 12, "val": 6, "test": 6}
    assert dict(table["label"].value_counts().iter_rows()) == {"real": 8, "fake": 16}


def test_two_000_003_under_two_methods_stay_two_videos(tmp_path):
    root = miniature.ffpp(tmp_path / "ffpp")
    out = tmp_path / "ffpp.parquet"
    assert index(root, "ffpp", out) == 0
    same_name = pl.read_parquet(out).filter(pl.col("video_path").str.ends_with("/000_003.mp4"))
    assert sorted(same_name["method"]) == ["Deepfakes", "FaceSwap"]
    # What the metadata dataset reads: two videos, two files, each decodable.
    dataset = MetadataDataset(MetadataConfig(metadata=out, group_column="group", num_frames=2, size=16))
    loaded = dataset.table().filter(pl.col("video_path").str.ends_with("/000_003.mp4"))
    assert loaded.height == 2 and loaded["video_path"].n_unique() == 2
    assert all(dataset.read_video(p).shape == (2, 3, 16, 16) for p in loaded["video_path"])


def test_ffpp_that_does_not_match_gets_every_problem_and_no_table(tmp_path, capsys):
    root = miniature.ffpp(tmp_path / "ffpp")
    (root / "splits/val.json").unlink()
    miniature.tiny_video(root / "original_sequences/youtube/c23/videos/042.mp4", fake=False)
    (root / "original_sequences/youtube/c23/videos/006.mp4").unlink()
    out = tmp_path / "ffpp.parquet"

    assert index(root, "ffpp", out) == 2
    lines = errors(capsys)
    text = "\n".join(lines)
    assert "splits/val.json: missing" in text
    assert "original_sequences/youtube/c23/videos/042.mp4: in no split (identity 042" in text
    assert "manipulated_sequences/Deepfakes/c23/videos/006_007.mp4: its original " \
           "original_sequences/youtube/c23/videos/006.mp4 is absent" in text
    assert lines[-1].endswith("no table written")
    assert all(str(root) in line for line in lines)
    assert not out.exists()


def test_ffpp_and_dfd_share_a_download_without_mixing(tmp_path):
    root = miniature.ffpp(tmp_path / "ff", pairs={"train": [["000", "003"]], "val": [["001", "002"]],
                                                 "test": [["004", "005"]]}, methods=("Deepfakes",))
    miniature.dfd(root)
    assert index(root, "ffpp", tmp_path / "ffpp.parquet") == 0
    assert index(root, "dfd", tmp_path / "dfd.parquet") == 0
    ffpp_methods = set(pl.read_parquet(tmp_path / "ffpp.parquet")["method"])
    dfd_methods = set(pl.read_parquet(tmp_path / "dfd.parquet")["method"])
    assert ffpp_methods == {"youtube", "Deepfakes"} and dfd_methods == {"actors", "DeepFakeDetection"}


def test_celebdf_test_list_and_identities(tmp_path):
    root = miniature.celebdf(tmp_path / "celeb")
    out = tmp_path / "celeb.parquet"
    assert index(root, "celebdf", out) == 0
    by = rows(out)
    assert {p for p, r in by.items() if r["split"] == "test"} == {
        "celeb/YouTube-real/00170.mp4", "celeb/Celeb-real/id2_0000.mp4", "celeb/Celeb-synthesis/id2_id1_0000.mp4"}
    assert by["celeb/Celeb-synthesis/id0_id1_0000.mp4"]["label"] == "fake"
    # id0_id1_0000 is id0_0000's frames with id1's face.
    assert {p: r["source_video"] for p, r in by.items() if r["label"] == "fake"} == {
        "celeb/Celeb-synthesis/id0_id1_0000.mp4": "celeb/Celeb-real/id0_0000.mp4",
        "celeb/Celeb-synthesis/id1_id0_0000.mp4": "celeb/Celeb-real/id1_0000.mp4",
        "celeb/Celeb-synthesis/id2_id1_0000.mp4": "celeb/Celeb-real/id2_0000.mp4"}
    youtube = by["celeb/YouTube-real/00171.mp4"]
    assert (youtube["label"], youtube["split"], youtube["method"]) == ("real", "train", "YouTube-real")
    # id0_id1 joins id0 and id1, id2_id1 joins id2: the celebrities are one group; YouTube videos their own.
    celeb = {r["group"] for p, r in by.items() if "Celeb-" in p}
    assert len(celeb) == 1
    assert by["celeb/YouTube-real/00170.mp4"]["group"] != by["celeb/YouTube-real/00171.mp4"]["group"]
    assert by["celeb/YouTube-real/00170.mp4"]["group"] not in celeb


def test_celebdf_problems(tmp_path, capsys):
    root = miniature.celebdf(tmp_path / "celeb")
    (root / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00170.mp4\n0 Celeb-real/id2_0000.mp4\n1 YouTube-real/09999.mp4\nbroken line here\n")
    (root / "Celeb-real/id1_0000.mp4").unlink()
    assert index(root, "celebdf", tmp_path / "c.parquet") == 2
    text = "\n".join(errors(capsys))
    assert ("List_of_testing_videos.txt: lists Celeb-real/id2_0000.mp4 as synthesised (0), "
            "but it is in Celeb-real") in text
    assert "List_of_testing_videos.txt: lists YouTube-real/09999.mp4, which is absent" in text
    assert "List_of_testing_videos.txt:4: expected" in text
    assert "Celeb-synthesis/id1_id0_0000.mp4: its original Celeb-real/id1_0000.mp4 is absent" in text
    assert not (tmp_path / "c.parquet").exists()

    (root / "List_of_testing_videos.txt").unlink()
    assert index(root, "celebdf", tmp_path / "c.parquet") == 2
    assert "List_of_testing_videos.txt: missing" in "\n".join(errors(capsys))


def test_dfdc_groups_by_original(tmp_path):
    root = miniature.dfdc(tmp_path / "dfdc")
    out = tmp_path / "dfdc.parquet"
    assert index(root, "dfdc", out) == 0
    by = rows(out)
    group = {Path(p).name: r["group"] for p, r in by.items()}
    assert group["aaa.mp4"] == group["bbb.mp4"] == group["ccc.mp4"]
    assert group["ddd.mp4"] == group["eee.mp4"] != group["aaa.mp4"]
    assert {r["split"] for r in by.values()} == {"train"}
    # metadata.json's original, found in whichever part holds it.
    assert {Path(p).name: r["source_video"] for p, r in by.items()} == {
        "aaa.mp4": None, "bbb.mp4": "dfdc/dfdc_train_part_0/aaa.mp4", "ccc.mp4": "dfdc/dfdc_train_part_0/aaa.mp4",
        "ddd.mp4": None, "eee.mp4": "dfdc/dfdc_train_part_1/ddd.mp4"}
    assert {Path(p).name: r["label"] for p, r in by.items()} == {
        "aaa.mp4": "real", "bbb.mp4": "fake", "ccc.mp4": "fake", "ddd.mp4": "real", "eee.mp4": "fake"}


def test_dfdc_problems(tmp_path, capsys):
    root = miniature.dfdc(tmp_path / "dfdc")
    miniature.tiny_video(root / "dfdc_train_part_1/zzz.mp4", fake=True)
    meta = json.loads((root / "dfdc_train_part_0/metadata.json").read_text())
    meta["bbb.mp4"]["original"] = "gone.mp4"
    (root / "dfdc_train_part_0/metadata.json").write_text(json.dumps(meta))
    assert index(root, "dfdc", tmp_path / "d.parquet") == 2
    text = "\n".join(errors(capsys))
    assert "dfdc_train_part_1/zzz.mp4: in no metadata.json entry" in text
    assert "dfdc_train_part_0/bbb.mp4: a fake whose original 'gone.mp4' is absent" in text
    assert not (tmp_path / "d.parquet").exists()


def test_dfd_actors_and_problems(tmp_path, capsys):
    root = miniature.dfd(tmp_path / "dfd")
    out = tmp_path / "dfd.parquet"
    assert index(root, "dfd", out) == 0
    by = {Path(p).name: r for p, r in rows(out).items()}
    assert by["01_02__exit_phone_room__YVGY8LOK.mp4"]["group"] == by["02__exit_phone_room.mp4"]["group"]
    assert by["03__kitchen_pan.mp4"]["group"] != by["01__exit_phone_room.mp4"]["group"]
    assert {r["split"] for r in by.values()} == {None}
    assert by["01_02__exit_phone_room__YVGY8LOK.mp4"]["source_video"] == \
        "dfd/original_sequences/actors/c23/videos/01__exit_phone_room.mp4"

    (root / "original_sequences/actors/c23/videos/02__exit_phone_room.mp4").unlink()
    assert index(root, "dfd", tmp_path / "again.parquet") == 2
    assert ("02_01__exit_phone_room__ABCD1234.mp4: its original "
            "original_sequences/actors/c23/videos/02__exit_phone_room.mp4 is absent") in "\n".join(errors(capsys))


def test_unknown_layout_and_mixed_options_are_one_line(tmp_path, capsys):
    root = miniature.dfd(tmp_path / "dfd")
    assert index(root, "ffp", tmp_path / "x.parquet") == 2
    assert errors(capsys) == ["error: --layout 'ffp': unknown layout (did you mean 'ffpp'?)"]
    assert main(["index", str(root), "--layout", "dfd", "--label-dir", "real=actors",
                 "-o", str(tmp_path / "x.parquet")]) == 2
    assert len(errors(capsys)) == 1
    assert not (tmp_path / "x.parquet").exists()


PLUGIN = '''
from pathlib import Path
from fvc_core.hookspecs import hookimpl
from fvc_loaders.layouts import Video


def read(root):
    """A dataset kept as <real|fake>/<person>_<n>.mp4 with a test.txt listing the test videos."""
    test = set((root / "test.txt").read_text().split())
    videos = []
    for path in sorted(root.glob("*/*.mp4")):
        label = path.parent.name
        videos.append(Video(path, label, (path.stem.split("_")[0],), "mine", None,
                            "test" if path.name in test else "train"))
    return videos, [] if videos else ["no videos"]


@hookimpl
def register_layouts(register):
    register("mydata", read, description="my lab's dataset")
'''


@pytest.fixture
def plugin_site(install_plugin):
    install_plugin("fvctest-layouts", PLUGIN, entry_point="mylayouts", module="fvctest_layout_plugin")


def test_a_plugin_adds_a_layout_through_the_same_door(tmp_path, plugin_site, capsys):
    root = tmp_path / "mine"
    for name, fake in (("ann_0.mp4", False), ("bob_0.mp4", False), ("ann_1.mp4", True), ("bob_1.mp4", True)):
        miniature.tiny_video(root / ("fake" if fake else "real") / name, fake=fake)
    (root / "test.txt").write_text("bob_0.mp4 bob_1.mp4\n")
    out = tmp_path / "mine.parquet"
    assert index(root, "mydata", out) == 0
    table = pl.read_parquet(out)
    assert dict(zip(table["video_path"], table["split"], strict=True)) == {
        "mine/fake/ann_1.mp4": "train", "mine/fake/bob_1.mp4": "test",
        "mine/real/ann_0.mp4": "train", "mine/real/bob_0.mp4": "test"}
    assert table["group"].n_unique() == 2
    # Disabled like any plugin: its layout is gone.
    assert main(["-p", "no:mylayouts", "index", str(root), "--layout", "mydata", "-o", str(out)]) == 2
    assert "unknown layout" in capsys.readouterr().err
