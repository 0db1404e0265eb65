"""The world a strategy is simulated in, and the round loop that runs its pipeline.

`build_world` prepares everything shared by the strategies of one seed (common random
numbers: the same users, arrivals and ground truth for every strategy): the fitted
users (`GroundTruth`), the return model, the held-out new items, and the log the
pipelines start from (the dataset without those items). `simulate` then runs one
strategy: each round, new items arrive through `Pipeline.add_items`, returning users
get a slate from `Pipeline.rank` (one batch), choose by the calibrated choice model,
and their choices are recorded as the server records events (a `click`, or a
`purchase` when it converts); the next query carries them as the user's history,
and every `refit_every` rounds the model is refitted on the log plus those events.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from lmrec.artifacts import catalog_rows, fit_for_artifact
from lmrec.data.catalog import Catalog
from lmrec.data.dataset import Dataset
from lmrec.data.events import EVENT_TYPES, EventPolicy
from lmrec.data.interactions import Interactions
from lmrec.models.base import Recommender
from lmrec.pipeline import Pipeline, Query, UserHistories
from lmrec.ranking.metrics import head_items
from lmrec.simulation.config import SimulationConfig
from lmrec.simulation.metrics import RoundRecord, round_metrics
from lmrec.simulation.returns import ReturnModel
from lmrec.simulation.strategies import StrategySpec
from lmrec.simulation.users import (
    GroundTruth,
    calibrate_no_click,
    choice_probabilities,
    item_embeddings,
    position_weights,
)

__all__ = ["SimulationRun", "World", "build_world", "simulate"]

_CLICK, _PURCHASE = EVENT_TYPES.index("click"), EVENT_TYPES.index("purchase")


@dataclass(eq=False)
class World:
    """What every strategy of one seed shares. Item indexes are the dataset's (`world`);
    `base` is the dataset without the `new_items`, the log pipelines start from."""

    dataset: Dataset
    base: Dataset
    base_world: np.ndarray
    config: SimulationConfig
    truth: GroundTruth
    returns: ReturnModel
    users: np.ndarray
    utilities: np.ndarray
    no_click: float
    new_items: np.ndarray
    arrival_round: np.ndarray
    vectors: np.ndarray | None
    embeddings: np.ndarray
    popularity: np.ndarray
    head: np.ndarray
    niche: np.ndarray
    seed: int

    def base_vectors(self) -> np.ndarray | None:
        """Text vectors of the base items (None without text)."""
        return None if self.vectors is None else self.vectors[self.base_world]


@dataclass(eq=False)
class SimulationRun:
    """One strategy's run: per-round metrics, round-0 consumption, gaps between visits,
    and the events recorded (dataset user index, world item index, event code, time)."""

    rounds: list[dict[str, float]]
    consumed_round0: np.ndarray
    visit_gaps: np.ndarray
    seconds_per_round: float
    fit_seconds: list[float] = field(default_factory=list)
    events: list[tuple[int, int, int, float]] = field(default_factory=list)


def _held_out_items(log: Interactions, share: float) -> np.ndarray:
    """The `share` of items whose first interaction is latest (ties by index)."""
    first = np.full(log.n_items, np.inf)
    np.minimum.at(first, log.items, log.timestamps)
    n = round(share * log.n_items)
    order = np.lexsort((np.arange(log.n_items), -first))
    return np.sort(order[:n])


def _base_dataset(dataset: Dataset, new_items: np.ndarray) -> tuple[Dataset, np.ndarray]:
    keep = np.ones(dataset.n_items, dtype=bool)
    keep[new_items] = False
    world = np.flatnonzero(keep)
    remap = np.full(dataset.n_items, -1, dtype=np.int64)
    remap[world] = np.arange(len(world))
    log = dataset.interactions
    rows = keep[log.items]
    base_log = Interactions.build(
        log.users[rows],
        remap[log.items[rows]],
        dataset.n_users,
        len(world),
        timestamps=log.timestamps[rows],
        weights=log.weights[rows],
        events=log.events[rows],
    )
    items = type(dataset.items)(dataset.items.id(int(i)) for i in world)
    catalog = Catalog(dataset.catalog.frame.iloc[world])
    return Dataset(dataset.name, base_log, dataset.users, items, catalog), world


def build_world(
    dataset: Dataset,
    config: SimulationConfig,
    truth: GroundTruth,
    returns: ReturnModel,
    vectors: np.ndarray | None = None,
    seed: int = 0,
) -> World:
    """The shared world of one seed: users sampled, utilities, arrivals, segments."""
    rng = np.random.default_rng([seed, 0])
    log = dataset.interactions
    with_history = np.flatnonzero(log.user_counts > 0)
    n = len(with_history) if config.users is None else min(config.users, len(with_history))
    users = np.sort(rng.choice(with_history, n, replace=False))
    utilities = truth.utilities(log.histories(users))
    new_items = _held_out_items(log, config.arrivals.share)
    base, base_world = _base_dataset(dataset, new_items)
    last = max(1, int(np.ceil(config.rounds * config.arrivals.spread)))
    arrival = np.sort(rng.integers(0, last, len(new_items)))
    arrival_round = np.full(dataset.n_items, -1)
    arrival_round[new_items[rng.permutation(len(new_items))]] = arrival
    popularity = base.interactions.item_counts.astype(np.float64)
    pop_world = np.zeros(dataset.n_items)
    pop_world[base_world] = popularity
    mainstream = np.array([pop_world[log.history(int(u))].mean() for u in users], dtype=np.float64)
    niche = np.zeros(n, dtype=bool)
    niche[np.argsort(mainstream, kind="stable")[: round(config.niche_share * n)]] = True
    cfg = config.choice
    weights = position_weights(config.k, cfg.position_bias)
    no_click = cfg.no_click
    if no_click is None:
        seen = log.matrix(binary=True)[users].toarray() > 0
        masked = np.where(seen, -np.inf, utilities)
        masked[:, new_items] = -np.inf
        best = -np.sort(-masked, axis=1)[:, : config.k] / truth.temperature
        no_click = calibrate_no_click(best, weights, cfg.oracle_ctr)
    emb = item_embeddings(log, seed=seed) if vectors is None else vectors
    return World(
        dataset,
        base,
        base_world,
        config,
        truth,
        returns,
        users,
        utilities,
        float(no_click),
        new_items,
        arrival_round,
        vectors,
        emb,
        pop_world,
        head_items(pop_world, config.head_share),
        niche,
        seed,
    )


class _Served:
    """A strategy's pipeline and the map from its item indexes to the world's."""

    def __init__(self, world: World, spec: StrategySpec, model: Recommender, dataset: Dataset):
        self.world, self.spec, self.dataset = world, spec, dataset
        vectors = None if world.vectors is None else world.vectors[self._world_of(dataset)]
        self.pipeline = Pipeline(
            model,
            dataset.items,
            dataset.catalog,
            histories=UserHistories.from_interactions(dataset.users, dataset.interactions),
            item_vectors=vectors,
            config=spec.pipeline,
            strategy=spec.label,
        )
        self.world_of = self._world_of(dataset)

    def _world_of(self, dataset: Dataset) -> np.ndarray:
        return self.world.dataset.items.indexes(dataset.items.ids)

    def add(self, items: np.ndarray) -> None:
        """New items arrive: catalogue rows and text vectors, as a client posts them."""
        ds = self.world.dataset
        ids = [ds.items.id(int(i)) for i in items]
        rows = [
            {k: v for k, v in r.items() if k != "id"}
            for r in catalog_rows(Catalog(ds.catalog.frame.iloc[items]), ids)
        ]
        vectors = None if self.world.vectors is None else self.world.vectors[items]
        self.pipeline.add_items(ids, rows, vectors)
        self.world_of = ds.items.indexes(self.pipeline.items.ids)


def _refit(served: _Served, events: list[tuple[int, int, int, float]]) -> tuple[_Served, float]:
    """Fit the strategy again on the starting log plus every simulated event so far, as a
    retrain on the server's log would (from the served model's weights where the
    strategy warm-starts and `warm_refit` is on). Items only ever join the end of a
    pipeline's vocabulary, so the starting log's indexes hold in the current one."""
    world, pipeline = served.world, served.pipeline
    items = pipeline.items.copy()
    ds = world.dataset
    n_items = len(items)
    local = np.full(ds.n_items, -1, dtype=np.int64)
    local[served.world_of] = np.arange(n_items)
    base = world.base.interactions
    policy = EventPolicy()
    u, i, e, t = (np.array(c) for c in zip(*events, strict=True)) if events else ([],) * 4
    w = np.where(np.asarray(e) == _PURCHASE, policy.purchase, policy.click)
    log = base.with_sizes(base.n_users, n_items).concat(
        Interactions.build(
            np.asarray(u, np.int64),
            local[np.asarray(i, np.int64)],
            base.n_users,
            n_items,
            timestamps=np.asarray(t, np.float64),
            weights=w,
            events=np.asarray(e, np.int8),
        )
    )
    arrived = served.world_of[len(world.base.items) :]
    catalog = (
        world.base.catalog.extend(ds.catalog.frame.iloc[arrived])
        if len(arrived)
        else world.base.catalog
    )
    dataset = Dataset(ds.name, log, ds.users, items, catalog)
    vectors = None if world.vectors is None else world.vectors[served.world_of]
    t0 = time.perf_counter()
    warm = pipeline.model if world.config.warm_refit else None
    model, _ = fit_for_artifact(dataset, served.spec.cls, served.spec.params, vectors, warm)
    return _Served(world, served.spec, model, dataset), time.perf_counter() - t0


def _slates(served: _Served, queries: list[Query], k: int) -> np.ndarray:
    ranked = served.pipeline.rank(queries)
    out = np.full((len(queries), k), -1, dtype=np.int64)
    for r, lst in enumerate(ranked):
        out[r, : len(lst)] = served.world_of[lst.items[:k]]
    return out


def simulate(
    world: World,
    spec: StrategySpec,
    model: Recommender,
    on_round: Callable[[int], None] | None = None,
) -> SimulationRun:
    """Run one strategy (its model fitted on `world.base`) for `config.rounds` rounds."""
    cfg, ch = world.config, world.config.choice
    rng = np.random.default_rng([world.seed, 1])
    metric_rng = np.random.default_rng([world.seed, 2])
    served = _Served(world, spec, model, world.base)
    n, n_items = len(world.users), world.dataset.n_items
    taste, start = world.utilities.copy(), world.utilities
    satiety = np.zeros((n, world.embeddings.shape[1]), dtype=np.float32)
    satisfaction = np.full(n, world.returns.reference)
    alive = np.ones(n, dtype=bool)
    last_visit = np.full(n, -1)
    session: list[list[str]] = [[] for _ in range(n)]
    events: list[tuple[int, int, int, float]] = []
    exposure = world.popularity.copy()
    consumed = sp.lil_matrix((n, n_items), dtype=np.float32)
    weights = position_weights(cfg.k, ch.position_bias)
    new_mask = np.zeros(n_items, dtype=bool)
    new_mask[world.new_items] = True
    t_end = float(world.dataset.interactions.timestamps.max())
    ids = world.dataset.users
    rounds, gaps, fits, seconds = [], [], [], []
    consumed0 = np.zeros(0, dtype=np.int64)
    for t in range(cfg.rounds):
        t0 = time.perf_counter()
        arriving = np.flatnonzero(world.arrival_round == t)
        if len(arriving):
            served.add(arriving)
        if cfg.refit_every and t > 0 and t % cfg.refit_every == 0:
            served, fit_s = _refit(served, events)
            fits.append(fit_s)
            session = [[] for _ in range(n)]
        visiting = alive & (world.returns.returns(satisfaction, rng) if t > 0 else True)
        rows = np.flatnonzero(visiting)
        queries = [
            Query(
                user_id=ids.id(int(world.users[r])),
                history=session[r][-cfg.history_limit :],
                k=cfg.k,
                explain=False,
            )
            for r in rows
        ]
        slates = _slates(served, queries, cfg.k)
        valid = slates >= 0
        safe = np.where(valid, slates, 0)
        sim = np.einsum("nkd,nd->nk", world.embeddings[safe], satiety[rows])
        logits = taste[rows[:, None], safe] / world.truth.temperature - ch.satiation * np.maximum(
            sim, 0
        )
        logits = np.where(valid, logits, -np.inf)
        probs = choice_probabilities(logits, weights, world.no_click)
        cum = probs.cumsum(axis=1)
        pick = (rng.random((len(rows), 1)) > cum).sum(axis=1).clip(max=cfg.k)
        clicked = pick < cfg.k
        chosen = np.where(clicked, slates[np.arange(len(rows)), pick.clip(max=cfg.k - 1)], -1)
        chosen[~clicked] = -1
        z = np.where(clicked, taste[rows, chosen.clip(min=0)], 0.0)
        converted = clicked & (
            rng.random(len(rows)) < 1 / (1 + np.exp(-(z - ch.conversion_threshold)))
        )
        satisfaction[rows] = cfg.returns.memory * satisfaction[rows] + (1 - cfg.returns.memory) * z
        mean_emb = np.where(valid[..., None], world.embeddings[safe], 0).sum(1) / np.maximum(
            valid.sum(1, keepdims=True), 1
        )
        satiety[rows] = ch.satiation_decay * satiety[rows] + (1 - ch.satiation_decay) * mean_emb
        picked_rows, picked = rows[clicked], chosen[clicked]
        if ch.drift > 0 and len(picked):
            taste[picked_rows] = (1 - ch.drift) * taste[
                picked_rows
            ] + ch.drift * world.truth.item_profiles(picked)
        when = t_end + (t + 1) * cfg.returns.round_seconds
        for r, item, conv in zip(
            picked_rows.tolist(), picked.tolist(), converted[clicked].tolist(), strict=True
        ):
            session[r].append(world.dataset.items.id(item))
            events.append((int(world.users[r]), item, _PURCHASE if conv else _CLICK, when))
            consumed[r, item] = 1.0
        np.add.at(exposure, picked, 1.0)
        if t == 0:
            consumed0 = picked.copy()
        gaps += (t - last_visit[rows][last_visit[rows] >= 0]).tolist()
        last_visit[rows] = t
        alive[rows] &= ~world.returns.leaves(satisfaction[rows], rng)
        available = np.ones(n_items, dtype=bool)
        available[world.new_items[world.arrival_round[world.new_items] > t]] = False
        drift = 1 - (taste * start).sum(1) / np.maximum(
            np.linalg.norm(taste, axis=1) * np.linalg.norm(start, axis=1), 1e-12
        )
        rec = RoundRecord(
            t,
            rows,
            slates,
            chosen,
            converted,
            z,
            exposure,
            consumed.tocsr(),
            available,
            alive.copy(),
            drift,
        )
        seconds.append(time.perf_counter() - t0)
        rounds.append(
            round_metrics(
                rec,
                world.popularity,
                world.dataset.n_users,
                world.head,
                new_mask,
                world.niche,
                world.embeddings,
                cfg.max_pairs_users,
                metric_rng,
            )
        )
        if on_round is not None:
            on_round(t)
    return SimulationRun(
        rounds,
        consumed0,
        np.asarray(gaps, dtype=np.float64),
        float(np.median(seconds)),
        fits,
        events,
    )


def run_info(world: World) -> dict[str, Any]:
    """The world's fitted user model, for the results' settings."""
    return {
        "temperature": world.truth.temperature,
        "no_click": world.no_click,
        "n_new_items": len(world.new_items),
        "n_users": len(world.users),
    }
