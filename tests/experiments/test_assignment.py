"""Assignment: uniform and sticky buckets, exclusive layers, independent layers, team draft."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from lmrec.errors import ConfigError
from lmrec.experiments import Experiment, assign, bucket, team_draft
from lmrec.experiments.assignment import in_holdout
from lmrec.experiments.design import LayerFull, allocate

UNITS = [f"user-{i}" for i in range(20_000)]


def _exp(id: str, traffic: float = 1.0, layer: str = "default", **extra: object) -> Experiment:
    spec = {
        "id": id,
        "traffic": traffic,
        "layer": layer,
        "variants": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}],
        **extra,
    }
    return Experiment.model_validate(spec)


def test_buckets_are_uniform_and_depend_on_the_salt() -> None:
    counts = np.bincount([bucket("s", u) // 1000 for u in UNITS], minlength=10)
    assert stats.chisquare(counts).pvalue > 0.001
    assert bucket("s", "user-1") == bucket("s", "user-1")
    same = sum(bucket("s1", u) == bucket("s2", u) for u in UNITS[:2000])
    assert same < 10  # independent salts agree about 1 in 10,000


def test_variant_shares_follow_the_definition() -> None:
    spec = {
        "id": "skew",
        "variants": [{"name": "a", "share": 0.9}, {"name": "b", "share": 0.1}],
    }
    e = allocate(Experiment.model_validate(spec), [], now=0)
    names = [assign([e], u, now=1)[0].variant for u in UNITS]
    share_b = names.count("b") / len(names)
    assert abs(share_b - 0.1) < 0.01


def test_one_layer_is_exclusive_and_two_layers_are_independent() -> None:
    first = allocate(_exp("one", 0.5), [], 0)
    second = allocate(_exp("two", 0.5), [first], 0)
    assert first.buckets == (0, 5000) and second.buckets == (5000, 10_000)
    with pytest.raises(LayerFull, match=r"at most 0\.00%"):
        allocate(_exp("three", 0.1), [first, second], 0)
    other = allocate(_exp("x", 1.0, layer="colour"), [first, second], 0)
    table = np.zeros((2, 2))
    for u in UNITS:
        got = {a.experiment.id: a.variant for a in assign([first, second, other], u, 1)}
        assert ("one" in got) != ("two" in got)  # exactly one of the layer's experiments
        table[int("one" in got), int(got["x"] == "b")] += 1
    # Being in "one" says nothing about the variant in the other layer.
    assert stats.chi2_contingency(table).pvalue > 0.001


def test_a_stopped_experiment_frees_its_range_and_schedules_apply() -> None:
    done = allocate(_exp("old", 1.0), [], 0).model_copy(update={"stopped_at": 5.0})
    assert allocate(_exp("new", 1.0), [done], now=6.0).buckets == (0, 10_000)
    assert assign([done], "user-1", now=6.0) == []
    later = allocate(_exp("later", start_at=100.0, stop_at=200.0), [], 0)
    assert later.status_at(50) == "scheduled" and assign([later], "user-1", 50) == []
    assert later.status_at(150) == "running" and assign([later], "user-1", 150)
    assert later.status_at(250) == "stopped"


def test_holdout_keeps_its_share_out_of_every_experiment() -> None:
    e = allocate(_exp("e"), [], 0)
    held = [u for u in UNITS if in_holdout(u, 0.2)]
    assert abs(len(held) / len(UNITS) - 0.2) < 0.01
    assert all(assign([e], u, 1, holdout=0.2) == [] for u in held[:500])
    assert all(assign([e], u, 1, holdout=0.2) for u in UNITS[:500] if u not in held)


def test_definitions_that_cannot_run_fail_with_the_reason() -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        Experiment.model_validate(
            {"id": "x", "variants": [{"name": "a", "share": 0.7}, {"name": "b", "share": 0.7}]}
        )
    with pytest.raises(ValueError, match="unique"):
        Experiment.model_validate(
            {"id": "x", "variants": [{"name": "a", "share": 0.5}, {"name": "a", "share": 0.5}]}
        )
    with pytest.raises(ValueError, match="exactly two"):
        Experiment.model_validate(
            {
                "id": "x",
                "type": "interleaving",
                "variants": [{"name": n, "share": 1 / 3} for n in "abc"],
            }
        )
    with pytest.raises(ValueError, match="mmr_lambda"):
        Experiment.model_validate(
            {
                "id": "x",
                "variants": [
                    {"name": "a", "share": 0.5},
                    {"name": "b", "share": 0.5, "knobs": {"mmr_lambda": 3}},
                ],
            }
        )
    assert issubclass(LayerFull, ConfigError)


def test_team_draft_follows_the_algorithm() -> None:
    a = ["1", "2", "3", "4"]
    b = ["3", "5", "1", "6"]
    items, teams = team_draft(a, b, 6, seed="s")
    assert len(items) == len(set(items)) == 6 and set(items) == {"1", "2", "3", "4", "5", "6"}
    # After every pair of picks the teams are level; each team's picks keep its own order.
    for n in range(2, 7, 2):
        assert teams[:n].count("a") == teams[:n].count("b")
    for team, ranking in (("a", a), ("b", b)):
        picked = [i for i, t in zip(items, teams, strict=True) if t == team]
        assert picked == [i for i in ranking if i in picked]
    # The first pick is each list's top item, whoever goes first.
    assert items[0] == ("1" if teams[0] == "a" else "3")
    assert team_draft(a, b, 6, seed="s") == (items, teams)  # seeded: a retry is identical
    firsts = {team_draft(a, b, 2, seed=str(s))[1][0] for s in range(50)}
    assert firsts == {"a", "b"}  # the coin decides who starts


def test_team_draft_of_identical_lists_is_that_list() -> None:
    ranking = [str(i) for i in range(10)]
    items, _ = team_draft(ranking, ranking, 10, seed="x")
    assert items == ranking
