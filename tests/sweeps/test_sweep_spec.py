"""What a sweep varies: the comma-list rule, readable and unique point ids, reproducible random draws."""

from __future__ import annotations

import math

import pytest

from fvc_core.errors import UserError
from fvc_core.sweeps.spec import RandomSweep, SweepSection, draw, expand, make_points, split_arguments, split_list


@pytest.mark.parametrize(("text", "items"), [
    ("1e-3,5e-4", ["1e-3", "5e-4"]),
    ("[1,2],[3,4]", ["[1,2]", "[3,4]"]),        # lists stay whole
    ("'a,b'", ["'a,b'"]),                       # a quoted comma is text
    ("{x: 1, y: 2},{x: 3}", ["{x: 1, y: 2}", "{x: 3}"]),
    ("plain", ["plain"]),
])
def test_commas_split_outside_brackets_and_quotes(text, items):
    assert split_list(text) == items


def test_command_line_words_become_a_grid_of_parsed_values_and_plain_overrides():
    plain, grid = split_arguments(["trainer.lr=1.0e-3,5.0e-4", "trainer.betas=[0.9,0.99],[0.8,0.9]",
                                   "trainer.epochs=3", "data.name='a,b'"])
    assert plain == ["trainer.epochs=3", "data.name='a,b'"]
    assert grid == {"trainer.lr": [1e-3, 5e-4], "trainer.betas": [[0.9, 0.99], [0.8, 0.9]]}
    with pytest.raises(UserError, match="empty value"):
        split_arguments(["trainer.lr=1e-3,"])


def test_ids_name_the_varied_keys_readably_and_stay_unique():
    combos = expand({"trainer.lr": [1e-3, 5e-4], "model.name": ["naive_cnn", "tiny/cnn"],
                     "trainer.epochs": [2]}, SweepSection())
    ids = [p.id for p in make_points(combos)]
    # The key that does not vary (epochs) is left out; model.name reads model=; unsafe characters go.
    assert ids == ["lr=0.001_model=naive_cnn", "lr=0.001_model=tiny-cnn", "lr=0.0005_model=naive_cnn",
                   "lr=0.0005_model=tiny-cnn"]
    # Two keys that end alike keep their whole names; values that read the same once shortened stay apart.
    points = make_points([{"model.size": 1, "data.size": 1, "trainer.lr": 0.000123451},
                          {"model.size": 2, "data.size": 3, "trainer.lr": 0.000123452}])
    assert [p.id for p in points] == ["model.size=1_data.size=1_lr=0.0001235", "model.size=2_data.size=3_lr=0.0001235"]
    assert [p.id for p in make_points([{"x": 1}, {"x": -1}, {"x": [1, 2]}])] == ["x=1", "x=-1", "x=1-2"]
    points = make_points([{"trainer.lr": 0.000123451}, {"trainer.lr": 0.000123452}])
    assert [p.id for p in points] == ["lr=0.0001235", "lr=0.0001235~2"]


def test_random_points_are_reproducible_within_their_bounds_and_more_points_keep_the_first():
    spec = {"points": 5, "seed": 3, "keys": {"trainer.lr": {"loguniform": [1e-5, 1e-2]},
                                             "trainer.epochs": {"int": [1, 4]},
                                             "model.name": {"choice": ["a", "b"]}}}
    first = draw(RandomSweep.model_validate(spec))
    assert first == draw(RandomSweep.model_validate(spec))
    assert all(1e-5 <= p["trainer.lr"] <= 1e-2 and p["trainer.epochs"] in range(1, 5) and p["model.name"] in "ab"
               for p in first)
    assert len({p["trainer.lr"] for p in first}) == 5
    assert draw(RandomSweep.model_validate({**spec, "points": 8}))[:5] == first
    assert draw(RandomSweep.model_validate({**spec, "seed": 4}))[0] != first[0]
    # log-uniform: the draws spread over the decades, not bunched at the top
    many = draw(RandomSweep.model_validate({**spec, "points": 400}))
    assert sum(math.log10(p["trainer.lr"]) < -3.5 for p in many) > 100
