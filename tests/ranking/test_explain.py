"""Explanations are read off the scoring itself: exact sums, and removing the top-cited item hurts."""

from __future__ import annotations

import numpy as np
import pytest

from lmrec.data import Histories
from lmrec.data.loaders import load_dataset
from lmrec.models import TrainingData
from lmrec.models.base import Recommender, drop_one_contributions
from lmrec.models.names import resolve_strategy
from lmrec.ranking.explain import (
    Explanation,
    history_tokens,
    shared_attributes,
    top_contributions,
)
from lmrec.ranking.topk import top_k


@pytest.fixture(scope="module")
def sample() -> tuple[TrainingData, np.ndarray]:
    ds = load_dataset("sample")
    # Attribute vectors stand in for text vectors: deterministic and instant.
    vectors = ds.catalog.attribute_vectors().toarray().astype(np.float32)
    return TrainingData(ds.interactions, ds.catalog, vectors), vectors


def faithfulness(model: Recommender, log, n: int = 150, seed: int = 0) -> float:  # type: ignore[no-untyped-def]
    """Share of sampled (user, top item) pairs whose score drops without the top-cited item."""
    rng = np.random.default_rng(seed)
    users = rng.choice(log.n_users, n, replace=False)
    lowered = total = 0
    for u in users:
        h = log.history(int(u)).astype(np.int64)
        s = model.score(Histories.from_lists([h]))
        s[0, h] = -np.inf
        item = int(top_k(s, 1)[0, 0])
        (cited,) = top_contributions(h, model.contributions(h, np.array([item])), n=1)
        if not cited:
            continue
        without = h[h != cited[0][0]]
        after = model.score(Histories.from_lists([without]))[0, item]
        total += 1
        lowered += int(after < s[0, item])
    return lowered / max(total, 1)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("itemknn", {}),
        ("ease", {"reg": 100.0}),
        ("content", {}),
        ("multi-interest", {}),
        ("hybrid", {"weight": 0.5}),
        ("fused", {"strategies": ("ease", "itemknn", "content"), "fusion": "rrf"}),
    ],
)
def test_removing_the_top_cited_history_item_lowers_the_score(sample, name, params) -> None:  # type: ignore[no-untyped-def]
    data, _ = sample
    model = resolve_strategy(name)(params).fit(data)
    if name == "fused":  # cited from the best-ranking strategy: check that strategy's score
        share = faithfulness(_BestPart(model), data.interactions)
    else:
        share = faithfulness(model, data.interactions)
    assert share >= 0.9, share


class _BestPart(Recommender):
    """Scores with whichever fused strategy an item's contributions are cited from."""

    def __init__(self, fused: Recommender):
        super().__init__()
        self.fused = fused
        self.n_items = fused.n_items
        self._fitted = True
        self._part: Recommender | None = None

    def contributions(self, history: np.ndarray, items: np.ndarray) -> np.ndarray:
        found = self.fused.attribute(history, items)
        assert found is not None
        self._part = self.fused.part(found[0].strategy)  # type: ignore[attr-defined]
        return self.fused.contributions(history, items)

    def _score(self, histories: Histories) -> np.ndarray:
        return (self._part or self.fused).score(histories)

    def _fit(self, data: TrainingData) -> None: ...
    def _state(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state(self, state: dict[str, np.ndarray]) -> None: ...


@pytest.mark.parametrize("name", ["itemknn", "ease"])
def test_contributions_sum_to_the_score(sample, name) -> None:  # type: ignore[no-untyped-def]
    data, _ = sample
    model = resolve_strategy(name)().fit(data)
    h = data.interactions.history(3).astype(np.int64)
    items = np.array([0, 5, 17])
    c = model.contributions(h, items)
    s = model.score(Histories.from_lists([h]))[0, items]
    np.testing.assert_allclose(c.sum(axis=1), s, rtol=1e-4, atol=1e-5)


def test_drop_one_matches_exact_contributions_for_a_linear_model(sample) -> None:  # type: ignore[no-untyped-def]
    data, _ = sample
    model = resolve_strategy("ease")().fit(data)
    h = np.unique(data.interactions.history(7).astype(np.int64))
    items = np.array([1, 2])
    np.testing.assert_allclose(
        drop_one_contributions(model, h, items), model.contributions(h, items), atol=1e-4
    )


@pytest.mark.parametrize(
    "params", [{}, {"recency": 0.0}, {"recency": 0.5, "max_history": 3}, {"max_history": 1}]
)
def test_profile_contributions_are_what_removing_each_item_costs(sample, params) -> None:  # type: ignore[no-untyped-def]
    data, _ = sample
    model = resolve_strategy("content")(params).fit(data)
    known = data.interactions.history(3).astype(np.int64)
    # A repeat, and an item the model does not know (added later), in the history.
    h = np.concatenate([known[:4], [model.n_items + 2], known[:1], known[4:]])
    full = model.score(Histories.from_lists([h]))[0]
    items = np.array([*np.argsort(-full)[:2], model.n_items + 5])  # two items it scores high
    c = model.contributions(h, items)
    for p in range(len(h)):
        without = model.score(Histories.from_lists([np.delete(h, p)]))[0]
        for r, item in enumerate(items[:2]):
            assert abs(c[r, p] - (full[item] - without[item])) < 1e-5
    assert not c[2].any()  # an unknown item scores 0 with or without any history item


def test_sentence_is_composed_from_the_facts() -> None:
    e = Explanation(
        strategy="ease",
        contributor="ease",
        contributions=[("1", 0.3), ("2", 0.1)],
        strategy_ranks={"ease": 0, "content": 4},
        interest="Mascara",
        shared_attributes=["brand=Acme"],
        rank_changes={"mmr": -2},
    )
    text = e.sentence(lambda i: f"item {i}")
    assert text == (
        "Because you liked item 1 (75%), item 2 (25%), found by ease (also ranked by content). "
        "It fits your interest in Mascara. Shares Acme. Moved down 2 places by the diversity setting."
    )


@pytest.mark.parametrize("name", ["als", "content", "ease"])
def test_score_spread_is_the_standard_deviation_of_the_scores(sample, name) -> None:  # type: ignore[no-untyped-def]
    data, _ = sample
    model = resolve_strategy(name)().fit(data)
    hist = Histories.from_lists([data.interactions.history(u) for u in (0, 5, 11)])
    expected = model.score(hist).astype(np.float64).std(axis=1)
    np.testing.assert_allclose(model.score_spread(hist), expected, rtol=1e-4)


def test_hybrid_contributions_are_the_same_with_or_without_cached_spreads(sample) -> None:  # type: ignore[no-untyped-def]
    data, _ = sample
    model = resolve_strategy("hybrid")(cf="ease", text="content", weight=0.6).fit(data)
    h = data.interactions.history(4).astype(np.int64)
    items = np.array([1, 2, 9])
    model._spreads.clear()
    cold = model.contributions(h, items)
    model.score(Histories.from_lists([h]))  # scoring caches this history's spreads
    assert model._key(h) in model._spreads
    np.testing.assert_allclose(model.contributions(h, items), cold, rtol=1e-5, atol=1e-7)


def test_shared_attributes_counts_each_history_item_once(sample) -> None:  # type: ignore[no-untyped-def]
    data, _ = sample
    catalog = data.catalog
    item = next(i for i in range(len(catalog)) if len(catalog.attributes(i)) >= 2)
    mine = catalog.attributes(item)
    sharing = [i for i in range(len(catalog)) if i != item and mine[0] in catalog.attributes(i)]
    history = [sharing[0], sharing[0]]  # a repeat counts once
    counts = history_tokens(catalog, history)
    assert counts[mine[0]] == 1
    shared = shared_attributes(catalog, item, counts)
    assert shared[0] == mine[0] and set(shared) <= set(mine)
    assert all(t in catalog.attributes(sharing[0]) for t in shared)
    assert shared_attributes(catalog, item, history_tokens(catalog, [])) == []
