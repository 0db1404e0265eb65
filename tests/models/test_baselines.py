"""Conformance and behaviour of the classical baselines."""

from typing import Any, ClassVar

import numpy as np
import pytest
from tests.models.conformance import PersonalisedBehaviour, StrategyConformance

from lmrec.data import Histories, Interactions
from lmrec.models import ALS, BPR, EASE, ItemKNN, Popularity, TrainingData
from lmrec.models.names import resolve_strategy
from lmrec.models.popularity import Random


class TestPopularity(StrategyConformance):
    strategy = Popularity

    def test_most_popular_first(self):
        log = Interactions.build(np.array([0, 1, 2, 0, 1]), np.array([2, 2, 2, 1, 1]), 3, 4)
        s = Popularity().fit(TrainingData(log)).score(Histories.from_lists([[]]))
        assert np.argsort(-s[0])[:3].tolist() == [2, 1, 0]


class TestRandom(StrategyConformance):
    strategy = Random

    def test_rankings_are_uniform_over_items(self):
        log = Interactions.build(np.array([0, 1]), np.array([0, 1]), 2, 50)
        model = Random().fit(TrainingData(log))
        s = model.score(Histories.from_lists([[i] for i in range(2000)]))
        firsts = np.bincount(s.argmax(axis=1), minlength=50)
        assert firsts.min() > 10 and firsts.max() < 80  # ~40 each if uniform


class TestItemKNN(StrategyConformance, PersonalisedBehaviour):
    strategy = ItemKNN
    params: ClassVar[dict[str, Any]] = {"k": 20}


class TestEASE(StrategyConformance, PersonalisedBehaviour):
    strategy = EASE
    params: ClassVar[dict[str, Any]] = {"reg": 10.0}

    def test_diagonal_is_zero(self, fitted):
        assert np.allclose(np.diag(fitted.weights_), 0.0)


class TestALS(StrategyConformance, PersonalisedBehaviour):
    strategy = ALS
    params: ClassVar[dict[str, Any]] = {"embedding_dim": 8, "epochs": 10, "reg": 0.1}

    def test_contributions_are_the_terms_of_the_score(self, fitted, parity):
        history = np.array([0, 2, 4, 2, parity.n_items + 3])  # a repeat and an unknown item
        items = np.array([6, 8, 1, -1])
        c = fitted.contributions(history, items)
        assert c.shape == (4, 5)
        assert (c[:, [1, 4]] == 0).all() and (c[3] == 0).all()  # first of a repeat, unknowns
        score = fitted.score_items(Histories.from_lists([history]), items)[0]
        np.testing.assert_allclose(c.sum(axis=1), score, rtol=1e-3, atol=1e-5)
        assert (c[:2, [0, 2, 3]] > 0).all()  # even items are pulled up by even history items


class TestBPR(StrategyConformance, PersonalisedBehaviour):
    strategy = BPR
    params: ClassVar[dict[str, Any]] = {"embedding_dim": 8, "epochs": 200, "learning_rate": 0.05}


def test_names_resolve_and_unknown_lists_known():
    assert resolve_strategy("ease") is EASE
    assert resolve_strategy("lmrec.models.itemknn:ItemKNN") is ItemKNN
    from lmrec.errors import ConfigError

    with pytest.raises(ConfigError, match="known: pop"):
        resolve_strategy("eaes")


def test_an_unknown_parameter_names_the_valid_ones() -> None:
    import pytest

    from lmrec.errors import ConfigError
    from lmrec.models import EASE

    with pytest.raises(
        ConfigError, match=r"unknown parameter regg; valid: reg \(see `lmrec models`\)"
    ):
        EASE({"regg": 5})
    with pytest.raises(ConfigError, match="reg: Input should be greater than 0"):
        EASE({"reg": -1})
