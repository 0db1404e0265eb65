"""Known answers for the choice model, homogenisation and the return model."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from lmrec.artifacts import fit_for_artifact
from lmrec.data import Dataset, Interactions
from lmrec.errors import ConfigError
from lmrec.simulation import (
    ReturnConfig,
    SimulationConfig,
    StrategySpec,
    build_world,
    choice_probabilities,
    fit_returns,
    fit_truth,
    jaccard_homogenisation,
    parse_strategies,
    position_weights,
    simulate,
)


def test_choice_probabilities_are_the_multinomial_logit_with_position_bias():
    u = np.array([[1.0, 0.0, 2.0]])
    w = position_weights(3, 1.0)  # 1, 1/2, 1/3
    p = choice_probabilities(u, w, no_click=0.5)
    expect = np.array([np.e, 0.5, np.exp(2) / 3, np.exp(0.5)])
    np.testing.assert_allclose(p[0], expect / expect.sum())
    assert p.sum() == pytest.approx(1.0)


def test_jaccard_homogenisation_by_hand():
    sets = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 1], [0, 0, 0]]))
    # The empty row is left out; one pair with |{1}| / |{0, 1, 2}| = 1/3.
    assert jaccard_homogenisation(sets, 10, np.random.default_rng(0)) == pytest.approx(1 / 3)


def _same_history_dataset(n_users: int = 3000, n_items: int = 12) -> Dataset:
    """Every user consumed items 0 and 1 (a week apart); the other items are unseen, so a
    popularity pipeline shows every user the same slate (items 2.. by index)."""
    rows = [(f"u{u}", f"i{i}", 1e9 + i * 7 * 86400) for u in range(n_users) for i in (0, 1)]
    frame = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    catalog = pd.DataFrame({"item": [f"i{i}" for i in range(n_items)]})
    return Dataset.from_frames("same", frame, catalog, keep_catalog_only_items=True)


def test_a_fixed_slate_is_clicked_at_the_analytic_rate_and_homogenisation_is_one():
    ds = _same_history_dataset()
    config = SimulationConfig.from_params(
        {
            "choice.temperature": 1.0,
            "choice.no_click": 1.0,
            "choice.satiation": 0.0,
            "choice.drift": 0.0,
            "arrivals.share": 0.0,
        },
        rounds=1,
        k=4,
        refit_every=0,
    )
    truth = fit_truth(ds, config)
    world = build_world(ds, config, truth, fit_returns(ds.interactions, config.returns))
    utilities = np.linspace(-1.0, 2.0, ds.n_items, dtype=np.float32)
    world.utilities[:] = utilities
    spec = StrategySpec.parse("pop")
    model, _ = fit_for_artifact(world.base, spec.cls, spec.params)
    run = simulate(world, spec, model)
    r0 = run.rounds[0]
    assert r0["homogenisation"] == pytest.approx(1.0)
    slate = utilities[2:6]  # the unseen items in popularity order (all tied: by index)
    w = position_weights(4, 1.0)
    analytic = (w * np.exp(slate)).sum() / (np.exp(1.0) + (w * np.exp(slate)).sum())
    se = np.sqrt(analytic * (1 - analytic) / ds.n_users)
    assert abs(r0["ctr"] - analytic) < 4 * se
    assert r0["active_users"] == ds.n_users


def test_fit_returns_reads_the_geometric_rate_from_session_gaps():
    week = 7 * 86400.0
    # One user, sessions at weeks 0, 1 and 3: gaps of 1 and 2 rounds -> rate 2 / 3.
    ts = 1e9 + np.array([0.0, 60.0, week, 3 * week])
    log = Interactions.build(np.zeros(4, int), np.arange(4), 1, 4, timestamps=ts)
    model = fit_returns(log, ReturnConfig())
    assert model.return_rate == pytest.approx(2 / 3)
    assert model.leave_hazard == 0.0  # the log ends with this user's last session
    untimed = Interactions.build(np.zeros(4, int), np.arange(4), 1, 4)
    assert fit_returns(untimed, ReturnConfig()).source == "defaults"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"choice.satiaton": 0}, "satiaton"),
        ({"returns.memroy": 0.1}, "memroy"),
        ({"roundz": 3}, "roundz"),
        ({"choice.drift": 2.0}, "drift"),
    ],
)
def test_bad_config_keys_fail_naming_the_key(params, named):
    with pytest.raises(ConfigError, match=named):
        SimulationConfig.from_params(params)


def test_strategy_syntax_knobs_and_errors():
    specs = parse_strategies("ease,ease+mmr,ease+mmr=0.4+cap=3", {"ease": {"reg": 100}})
    assert [s.pipeline.rerank.mmr_lambda for s in specs] == [1.0, 0.7, 0.4]
    assert specs[2].pipeline.rerank.exposure_cap == 3
    assert all(s.params == {"reg": 100} for s in specs)
    with pytest.raises(ConfigError, match="mmrr"):
        StrategySpec.parse("ease+mmrr")
    with pytest.raises(ConfigError, match="mmr_lambda"):
        StrategySpec.parse("ease+mmr=2")
    with pytest.raises(ConfigError, match="twice"):
        parse_strategies("pop,pop")


def test_choices_become_history_so_no_user_chooses_an_item_twice():
    """Chosen items join the next query's history (and, after a refit, the trained log),
    and the pipeline leaves consumed items out: nobody is shown, so nobody picks, one twice."""
    ds = _same_history_dataset(n_users=200, n_items=30)
    config = SimulationConfig.from_params(
        {"choice.no_click": -3.0, "arrivals.share": 0.1}, rounds=6, k=4, refit_every=2
    )
    truth = fit_truth(ds, config)
    world = build_world(ds, config, truth, fit_returns(ds.interactions, config.returns))
    spec = StrategySpec.parse("pop")
    model, _ = fit_for_artifact(world.base, spec.cls, spec.params)
    run = simulate(world, spec, model)
    pairs = [(u, i) for u, i, _, _ in run.events]
    assert len(pairs) > 500  # almost every visit clicks
    assert len(set(pairs)) == len(pairs)
    assert len(run.fit_seconds) == 2  # refits at rounds 2 and 4


def test_a_refit_trains_on_the_starting_log_plus_every_event_once():
    from lmrec.simulation.world import _refit, _Served

    ds = _same_history_dataset(n_users=50, n_items=20)
    config = SimulationConfig.from_params({"arrivals.share": 0.2}, rounds=4)
    truth = fit_truth(ds, config)
    world = build_world(ds, config, truth, fit_returns(ds.interactions, config.returns))
    spec = StrategySpec.parse("pop")
    model, _ = fit_for_artifact(world.base, spec.cls, spec.params)
    served = _Served(world, spec, model, world.base)
    served.add(world.new_items[:2])
    old = [int(i) for i in world.base_world[-2:]]
    events = [(0, int(world.new_items[0]), 3, 2e9), (1, old[0], 3, 2e9)]
    once, _ = _refit(served, events)
    twice, _ = _refit(once, [*events, (2, old[1], 3, 2e9 + 1)])
    assert len(once.dataset.interactions) == len(world.base.interactions) + 2
    assert len(twice.dataset.interactions) == len(world.base.interactions) + 3
    assert len(twice.dataset.items) == len(world.base.items) + 2
    assert len(twice.dataset.catalog) == len(twice.dataset.items)


@pytest.mark.parametrize("warm", [True, False])
def test_a_refit_continues_from_the_served_transformer_when_warm_refit_is_on(warm):
    """With `warm_refit` a refit of the sequential transformer starts from the served
    model's weights: trained for 0 more epochs it scores the known items exactly as
    the served one; from scratch it does not."""
    from lmrec.models.sasrec import SASRec
    from lmrec.simulation.world import _refit, _Served

    ds = _same_history_dataset(n_users=60, n_items=20)
    config = SimulationConfig.from_params({"arrivals.share": 0.2}, rounds=4, warm_refit=warm)
    world = build_world(
        ds, config, fit_truth(ds, config), fit_returns(ds.interactions, config.returns)
    )
    small = {"embedding_dim": 8, "max_len": 5, "batch_size": 16, "progress": False}
    spec = StrategySpec.parse("sasrec", {"sasrec": {**small, "epochs": 0}})
    model, _ = fit_for_artifact(world.base, SASRec, {**small, "epochs": 3})
    served = _Served(world, spec, model, world.base)
    served.add(world.new_items[:2])
    refit, _ = _refit(served, [(0, int(world.base_world[3]), 3, 2e9)])
    hist = ds.interactions.histories(np.arange(3))
    before, after = model.score(hist), refit.pipeline.model.score(hist)[:, : model.n_items]
    assert refit.pipeline.model.n_items == model.n_items + 2
    assert np.allclose(after, before, atol=1e-6) is warm
    assert ("warm_start" in refit.pipeline.model.describe()) is warm


def _fixed_world(satiation: float, drift: float, rounds: int = 2, utility: float = 0.0):
    """The same-history world with every item alike: equal utilities and one shared
    embedding, every user returning each round whatever happened."""
    ds = _same_history_dataset()
    config = SimulationConfig.from_params(
        {
            "choice.temperature": 1.0,
            "choice.no_click": 1.0,
            "choice.satiation": satiation,
            "choice.satiation_decay": 0.7,
            "choice.drift": drift,
            "arrivals.share": 0.0,
            "returns.return_rate": 0.999,
            "returns.leave_hazard": 0.0,
            "returns.sensitivity": 0.0,
        },
        rounds=rounds,
        k=4,
        refit_every=0,
    )
    truth = fit_truth(ds, config)
    world = build_world(ds, config, truth, fit_returns(ds.interactions, config.returns))
    world.utilities[:] = utility
    shared = np.zeros(world.embeddings.shape[1], dtype=world.embeddings.dtype)
    shared[0] = 1.0
    world.embeddings[:] = shared
    spec = StrategySpec.parse("pop")
    model, _ = fit_for_artifact(world.base, spec.cls, spec.params)
    return ds, simulate(world, spec, model)


@pytest.mark.parametrize("satiation", [0.0, 2.0])
def test_satiation_lowers_the_next_rounds_click_rate_by_the_analytic_amount(satiation):
    _, run = _fixed_world(satiation, drift=0.0)
    w = position_weights(4, 1.0).sum()

    def ctr(penalty: float) -> float:
        return w * np.exp(-penalty) / (w * np.exp(-penalty) + np.exp(1.0))

    # Round 0: nothing seen yet. Round 1: satiety = (1 - 0.7) x the shared embedding, so
    # every shown item loses satiation x 0.3 utility.
    for r, expected in ((0, ctr(0.0)), (1, ctr(satiation * 0.3))):
        se = np.sqrt(expected * (1 - expected) / run.rounds[r]["active_users"])
        assert abs(run.rounds[r]["ctr"] - expected) < 4 * se, (r, run.rounds[r]["ctr"], expected)


def test_taste_drifts_only_when_drift_is_on_and_it_accumulates():
    from lmrec.data.loaders import load_dataset
    from lmrec.simulation import run_simulation

    sample = load_dataset("sample")

    def drifts(drift: float) -> list[float]:
        params = {"choice.satiation": 0.0, "choice.drift": drift, "arrivals.share": 0.0}
        config = SimulationConfig.from_params(params, rounds=4, refit_every=0, users=200)
        doc = run_simulation(sample, parse_strategies("pop"), config, seeds=1)
        return [r["taste_drift"] for r in doc["strategies"]["pop"]["rounds"]]

    assert drifts(0.0) == pytest.approx([0.0] * 4, abs=1e-6)
    moving = drifts(0.3)
    # Each choice moves a taste 30% of the way to the chosen item's profile: tastes leave
    # where they started from the first round and keep going as users keep choosing.
    assert moving[0] > 0.0
    assert all(b >= a for a, b in itertools.pairwise(moving)), moving
    assert moving[-1] > moving[0]
