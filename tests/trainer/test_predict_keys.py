"""`fvc predict RUN mem://0003` (issue 24): a dataset whose videos are keys, not files, receives the key
exactly as typed (it used to get `mem:/0003`, a path normalised by pathlib)."""

from __future__ import annotations

import polars as pl
import pytest

from fvc_core.cli import main

pytest.importorskip("fvc_naive_cnn")

MEMORY_DATASET = '''
import torch
from pydantic import BaseModel, ConfigDict
from fvc_core.contract import BadVideoError, hookimpl

READ = []  # every key read_video received


class Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Memory:
    on_bad_video = "fail"

    def table(self):
        import polars as pl

        keys = [f"mem://{i:04d}" for i in range(12)]
        return pl.DataFrame({"video_path": keys, "label": [i % 2 for i in range(12)], "group": keys})

    def read_video(self, path, *, augment=False, seed=0):
        READ.append(path)
        if not path.startswith("mem://"):
            raise BadVideoError(path, "not a key of this dataset")
        index = int(path.removeprefix("mem://"))
        generator = torch.Generator().manual_seed(index)
        clip = torch.randint(0, 100, (2, 3, 16, 16), generator=generator, dtype=torch.uint8)
        return clip + 120 * (index % 2)  # fakes are brighter

    def protocol(self):
        return {"dataset": "memory"}


@hookimpl
def register_datasets(register):
    register("memory", lambda cfg: Memory(), config=Cfg)
'''


@pytest.fixture
def memory_plugin(install_plugin):
    return install_plugin("fvctest-memory", MEMORY_DATASET, entry_point="memory")


def test_predict_passes_a_datasets_own_keys_unchanged(tmp_path, memory_plugin, capsys):
    config = tmp_path / "exp.yaml"
    config.write_text("output_dir: out\ndata: {name: memory}\nmodel: {name: naive_cnn, chunk_size: 2}\n"
                      "trainer: {name: supervised, folds: 2, epochs: 1, warmup_epochs: 0, num_workers: 0,\n"
                      "          batch_size: 2, grad_accum: 1}\ntrackers: []\n")
    assert main(["run", str(config)]) == 0
    memory_plugin.READ.clear()
    scores = tmp_path / "scores.csv"
    assert main(["predict", str(tmp_path / "out/naive_cnn"), "mem://0003", "-o", str(scores)]) == 0
    assert memory_plugin.READ == ["mem://0003"]
    frame = pl.read_csv(scores)
    assert frame["video_path"].to_list() == ["mem://0003"] and frame["score"][0] is not None
    # A plain name that is no file is still a one-line error, not a key.
    assert main(["predict", str(tmp_path / "out/naive_cnn"), "mem:0003"]) == 2
    assert "mem:0003: no such video file or folder" in capsys.readouterr().err
