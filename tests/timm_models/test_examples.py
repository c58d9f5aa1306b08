"""The FF++ c23 -> Celeb-DF example configs are valid experiments for fvc's own validation, and the
commands in their comments make the face crops at the size the config reads."""

from __future__ import annotations

import re

import pytest

from fvc_core.config import load_config
from tests.conftest import REPO

EXAMPLES = {"ffpp_c23_xception.yaml": ("xception", 299), "ffpp_c23_efficientnet_b4.yaml": ("efficientnet_b4", 380)}


@pytest.mark.parametrize(("name", "expected"), EXAMPLES.items())
def test_the_cross_dataset_examples_validate_and_agree_with_their_commands(name, expected):
    path = REPO / "examples" / name
    config = load_config(path)  # every section validated, the model's input checked against data:
    model, size = expected
    assert config.model.name == model
    assert (config.data.config.size, config.data.config.num_frames) == (size, 32)
    assert config.trainer.config.split == "official" and config.trainer.config.folds == 1
    assert config.model.config.pretrained == "cache"  # never a download unless the user asks
    text = path.read_text()
    assert set(re.findall(r"--size (\d+)", text)) == {str(size)}
    run_dir = re.search(r"fvc evaluate (\S+) ", text)[1]
    assert (REPO / run_dir).resolve() == (config.output_dir / model).resolve()
    prepared = re.findall(r"fvc prepare \S+ +-o (\S+)", text)
    assert (REPO / prepared[0] / "scaled_metadata.parquet").resolve() == config.data.config.metadata.resolve()
