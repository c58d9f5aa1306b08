"""Another dataset plugin reuses the metadata dataset through fvc_loaders.api (issue 24): a CSV
dataset, installed as a distribution of its own and found through its entry point, gets the table
checks, the reader and `fvc check` without copying a line of them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from fvc_core.cli import main
from fvc_core.config import load_config
from fvc_core.plugins import get_registry

from .videos import make_video

CSV_PLUGIN = '''
from pathlib import Path

from pydantic import Field

from fvc_core.contract import hookimpl
from fvc_loaders.api import ClipConfig, MetadataDataset, check_table


class CsvConfig(ClipConfig):
    csv: Path = Field(..., description="a CSV file: file,kind")


class CsvDataset(MetadataDataset):
    name = "csv"

    def __init__(self, config):
        self.config = config

    def table(self):
        import polars as pl

        from fvc_core.contract import UserError

        path = Path(self.config.csv)
        if not path.is_file():
            raise UserError(f"{path}: CSV table not found")
        return check_table(pl.read_csv(path), where=path, base_dir=path.parent, video_column="file",
                           label_column="kind", labels={"pristine": 0, "forged": 1})

    def check(self):
        from fvc_loaders.api import missing_videos

        return missing_videos(self.table(), self.config.csv, self.config.on_bad_video)


@hookimpl
def register_datasets(register):
    register("csv", CsvDataset, config=CsvConfig, description="videos listed in a CSV file")
'''


@pytest.fixture
def csv_plugin(install_plugin):
    install_plugin("fvctest-csv", CSV_PLUGIN, entry_point="csvdata")


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text("data: {name: csv, csv: clips/list.csv, num_frames: 3, size: 32}\n"
                    "model: {name: naive_cnn}\ntrackers: []\n")
    return path


def test_a_csv_dataset_reuses_the_table_checks_reader_and_fvc_check(tmp_path, csv_plugin, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    for name in ("a.mp4", "b.mp4"):
        make_video(clips / name, frames=4, width=48, height=32)
    (clips / "list.csv").write_text("file,kind\na.mp4,pristine\nb.mp4,forged\n")
    config = load_config(write_config(tmp_path))
    plugin = next(p for p in get_registry().plugins if p.name == "csvdata")
    assert plugin.distribution == "fvctest-csv" and plugin.provides == {"datasets": ["csv"]}

    dataset = get_registry().create("datasets", "csv", config.data.config)
    table = dataset.table()
    assert table["video_path"].to_list() == [str(clips / "a.mp4"), str(clips / "b.mp4")]
    assert table["label"].to_list() == [0, 1]
    clip = dataset.read_video(table["video_path"][1])
    assert clip.dtype == torch.uint8 and tuple(clip.shape) == (3, 3, 32, 32)
    assert dataset.protocol()["num_frames"] == 3

    # The shared checks speak for the CSV file, in one line, from `fvc check`.
    (clips / "list.csv").write_text("file,kind\na.mp4,pristine\nb.mp4,deepfake\n")
    assert main(["check", str(write_config(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {clips / 'list.csv'}: column 'kind' has unknown labels 'deepfake' "
                   "(accepted: 'pristine', 'forged', 0, 1)\n")
    (clips / "list.csv").write_text("file,kind\na.mp4,pristine\nc.mp4,forged\n")
    assert main(["check", str(write_config(tmp_path))]) == 2
    assert "1 of 2 videos listed do not exist" in capsys.readouterr().err


def test_the_api_imports_nothing_heavy():
    import subprocess

    code = "import sys, fvc_loaders.api; print(sorted(m for m in ('polars', 'av', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
