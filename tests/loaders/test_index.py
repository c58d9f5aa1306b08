"""``fvc index``: a table from a folder of videos, readable by the metadata dataset."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from fvc_loaders.config import MetadataConfig
from fvc_loaders.dataset import MetadataDataset

from fvc_core.cli import main
from tests.loaders.videos import make_video


def tree(root: Path, files: list[str]) -> Path:
    """Small real videos (and other files) at the given paths below ``root``."""
    for rel in files:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".txt"):
            path.write_text("notes")
        elif rel.lower().endswith(".avi"):
            make_video(path, codec="mjpeg", frames=3, width=32, height=32)
        else:
            make_video(path, frames=3, width=32, height=32)
    return root


def test_real_and_fake_folders_at_any_depth(tmp_path, capsys):
    root = tree(tmp_path / "videos", [
        "real/a.mp4", "real/youtube/b.MP4", "fake/deepfakes/c.avi", "fake/d.mkv",
        "real/readme.txt", "fake/.hidden.mp4", "train/real/e.mov",
    ])
    out = tmp_path / "metadata.parquet"

    assert main(["index", str(root), "-o", str(out)]) == 0

    table = pl.read_parquet(out)
    assert table.columns == ["video_path", "label"]
    assert table.sort("video_path").rows() == [
        ("videos/fake/d.mkv", "fake"),
        ("videos/fake/deepfakes/c.avi", "fake"),
        ("videos/real/a.mp4", "real"),
        ("videos/real/youtube/b.MP4", "real"),
        ("videos/train/real/e.mov", "real"),
    ]
    assert "5 videos (3 real, 2 fake)" in capsys.readouterr().out
    # What index writes, the metadata dataset reads.
    dataset = MetadataDataset(MetadataConfig(metadata=out, num_frames=2, size=16))
    assert dataset.table()["label"].to_list() == [1, 1, 0, 0, 0]
    assert dataset.read_video(dataset.table()["video_path"][1]).shape == (2, 3, 16, 16)


def test_paths_are_relative_to_the_table_wherever_it_goes(tmp_path):
    root = tree(tmp_path / "data" / "videos", ["real/a.mp4", "fake/b.mp4"])
    out = tmp_path / "tables" / "deep" / "index.parquet"
    assert main(["index", str(root), "-o", str(out)]) == 0
    assert pl.read_parquet(out)["video_path"].to_list() == ["../../data/videos/fake/b.mp4",
                                                            "../../data/videos/real/a.mp4"]
    table = MetadataDataset(MetadataConfig(metadata=out)).table()
    assert all(Path(p).is_file() for p in table["video_path"])


def test_a_csv_name_gets_a_csv_table(tmp_path, capsys):
    # `-o table.csv` wrote Parquet bytes under a .csv name: garbage to a spreadsheet, and to pandas.
    root = tree(tmp_path / "my videos", ["real/a b.mp4", "fake/c,d.mp4"])
    out = tmp_path / "table.csv"
    assert main(["index", str(root), "-o", str(out)]) == 0
    assert out.read_text().splitlines() == ["video_path,label", '"my videos/fake/c,d.mp4",fake',
                                            "my videos/real/a b.mp4,real"]
    table = MetadataDataset(MetadataConfig(metadata=out, num_frames=2, size=16)).table()
    assert table["label"].to_list() == [1, 0] and all(Path(p).is_file() for p in table["video_path"])
    # A --layout table's layout lives in Parquet metadata: refused before the folder is read.
    assert main(["index", str(root), "-o", str(tmp_path / "ff.csv"), "--layout", "ffpp"]) == 2
    assert "name it .parquet" in capsys.readouterr().err and not (tmp_path / "ff.csv").exists()


def test_label_dirs_and_regex_rules(tmp_path, capsys):
    root = tree(tmp_path / "ff", [
        "original_sequences/youtube/000.mp4", "original_sequences/actors/001.mp4",
        "manipulated_sequences/Deepfakes/000_003.mp4", "manipulated_sequences/FaceSwap/000_003.mp4",
        "other/x.mp4",
    ])
    out = tmp_path / "m.parquet"
    assert main(["index", str(root), "-o", str(out), "--label-dir", "real=youtube,actors",
                 "--label-dir", "1=deepfakes,faceswap"]) == 0
    labels = dict(pl.read_parquet(out).rows())
    assert labels == {"ff/manipulated_sequences/Deepfakes/000_003.mp4": "fake",
                      "ff/manipulated_sequences/FaceSwap/000_003.mp4": "fake",
                      "ff/original_sequences/actors/001.mp4": "real",
                      "ff/original_sequences/youtube/000.mp4": "real"}
    assert "left out 1 videos that match no label rule: other/x.mp4" in capsys.readouterr().out

    assert main(["index", str(root), "-o", str(out), "--label-rule", r"fake=^manipulated_",
                 "--label-rule", "real=^original_"]) == 0
    assert sorted(pl.read_parquet(out)["label"].to_list()) == ["fake", "fake", "real", "real"]


@pytest.mark.parametrize(
    ("files", "args", "message"),
    [
        ([], [], "no videos found (looked for .mp4, .avi, .mkv, .webm, .mov, .m4v files)"),
        (["notes.txt", "clips/a.mp4"], [], "1 videos found but none has a label"),
        (["real/fake/a.mp4"], [], "real/fake/a.mp4: matches both real and fake label rules"),
        (["real/a.mp4"], ["--label-rule", "fake=("], "--label-rule 'fake=(': invalid regular expression"),
        (["real/a.mp4"], ["--label-dir", "deepfake=x"], "expected LABEL=VALUE with LABEL real, fake, 0 or 1"),
    ],
    ids=["no-videos", "no-labels", "ambiguous", "bad-regex", "bad-label"],
)
def test_mistakes_are_one_line_with_exit_code_2(tmp_path, capsys, files, args, message):
    root = tree(tmp_path / "in", files)
    root.mkdir(exist_ok=True)
    assert main(["index", str(root), "-o", str(tmp_path / "m.parquet"), *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert message in err
    assert not (tmp_path / "m.parquet").exists()


def test_not_a_folder(tmp_path, capsys):
    assert main(["index", str(tmp_path / "nowhere"), "-o", str(tmp_path / "m.parquet")]) == 2
    assert "nowhere: not a folder" in capsys.readouterr().err


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc (Linux)")
def test_a_table_where_no_file_can_be_made_is_one_line(tmp_path, capsys):
    """polars' FileNotFoundError carries no errno: it was a traceback."""
    root = tree(tmp_path / "in", ["real/a.mp4"])
    assert main(["index", str(root), "-o", "/proc/fvc-index.parquet"]) == 2
    assert capsys.readouterr().err == ("error: -o /proc/fvc-index.parquet: no such file or folder, or a folder "
                                       "where files cannot be made\n")
