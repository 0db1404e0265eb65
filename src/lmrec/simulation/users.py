"""Simulated users fitted from a log: ground-truth utilities and a calibrated choice model.

The ground truth is a strong strategy of a stated family (`TruthFamily`) fitted on
*all* of a dataset's interactions; a user's utility for an item is that model's score
from the user's whole history, standardised per user (`z`, mean 0 and deviation 1
over the catalogue), so EASE and ALS users are on one scale. Utilities become choice
probabilities over a shown slate by a multinomial logit with position bias and a
no-click option (`choice_probabilities`); the logit's temperature is calibrated by
maximum likelihood of each user's real last item (`calibrate_temperature`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq, minimize_scalar

from lmrec.data.dataset import Dataset
from lmrec.data.interactions import Histories, Interactions
from lmrec.models.base import Recommender, TrainingData
from lmrec.models.names import resolve_strategy
from lmrec.simulation.config import SimulationConfig

__all__ = [
    "GroundTruth",
    "calibrate_no_click",
    "calibrate_temperature",
    "choice_probabilities",
    "fit_truth",
    "item_embeddings",
    "position_weights",
    "standardise",
]

#: Users scored at once when computing utilities (rows x items float32).
_ROWS = 2048
#: Users sampled for the temperature fit and the truth's own NDCG@10.
_CALIBRATION_USERS = 3000


def position_weights(k: int, bias: float) -> np.ndarray:
    """Examination weight of each slate position: `(1 / (p + 1)) ** bias`."""
    return (1.0 / np.arange(1, k + 1, dtype=np.float64)) ** bias


def choice_probabilities(logits: np.ndarray, weights: np.ndarray, no_click: float) -> np.ndarray:
    """Multinomial-logit choice over each slate row plus a no-click option (last column).

    `logits` (users x k) are utilities over temperature, `weights` the position
    weights, `no_click` the utility of choosing nothing; rows sum to 1.
    """
    logits = np.asarray(logits, dtype=np.float64)
    top = np.maximum(logits.max(axis=1, initial=no_click), no_click)[:, None]
    shown = weights[: logits.shape[1]] * np.exp(logits - top)
    rest = np.exp(no_click - top)
    total = shown.sum(axis=1, keepdims=True) + rest
    return np.hstack([shown, rest]) / total


def standardise(scores: np.ndarray) -> np.ndarray:
    """Each row minus its mean over its deviation (float32); a flat row becomes zeros."""
    scores = np.asarray(scores, dtype=np.float64)
    mean = scores.mean(axis=1, keepdims=True)
    std = scores.std(axis=1, keepdims=True)
    return ((scores - mean) / np.where(std > 1e-12, std, 1.0)).astype(np.float32)


def calibrate_temperature(z: np.ndarray, seen: sp.csr_matrix, target: np.ndarray) -> float:
    """The temperature that maximises the mean log-likelihood of `target` (one item per
    row) under a softmax of `z / temperature` over the row's unseen items."""
    z = z.astype(np.float64)
    mask = seen.toarray().astype(bool)
    mask[np.arange(len(target)), target] = False
    z = np.where(mask, -np.inf, z)
    picked = z[np.arange(len(target)), target]

    def nll(log_t: float) -> float:
        s = z / np.exp(log_t)
        top = s.max(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(s - top).sum(axis=1))
        return float(-(picked / np.exp(log_t) - lse).mean())

    res = minimize_scalar(nll, bounds=(np.log(0.02), np.log(20.0)), method="bounded")
    return float(np.exp(res.x))


def calibrate_no_click(best: np.ndarray, weights: np.ndarray, target: float) -> float:
    """The no-click utility at which slates `best` (users x k logits) are clicked with
    mean probability `target`."""

    def gap(u0: float) -> float:
        return float(1.0 - choice_probabilities(best, weights, u0)[:, -1].mean() - target)

    lo, hi = float(best.min()) - 50.0, float(best.max()) + 50.0
    return float(brentq(gap, lo, hi, xtol=1e-6))


def item_embeddings(log: Interactions, dim: int = 32, seed: int = 0) -> np.ndarray:
    """L2-normalised item vectors from a truncated SVD of the binary log (items x dim):
    what "similar items" means for satiation when the catalogue has no text."""
    x = log.matrix(binary=True).astype(np.float64)
    dim = max(1, min(dim, min(x.shape) - 1))
    v0 = np.random.default_rng(seed).standard_normal(min(x.shape))
    _, s, vt = sp.linalg.svds(x, k=dim, v0=v0)
    emb = (vt.T * np.sqrt(s)).astype(np.float32)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norms, 1e-12)


@dataclass(eq=False)
class GroundTruth:
    """The fitted users: a preference model on all interactions and its calibration.

    `model` scores every item of the dataset; `temperature` turns standardised
    utilities into logits; `ndcg10` is the truth's own NDCG@10 on each user's held-out
    last item (fitted without it), the figure to hold against the strategies'.
    """

    family: str
    model: Recommender
    temperature: float
    ndcg10: float
    n_calibration_users: int

    def utilities(self, histories: Histories) -> np.ndarray:
        """Standardised utilities (rows x items) of users with these histories."""
        out = [
            standardise(
                self.model.score(histories.select(np.arange(lo, min(lo + _ROWS, len(histories)))))
            )
            for lo in range(0, len(histories), _ROWS)
        ]
        return np.vstack(out) if out else np.zeros((0, self.model.n_items), np.float32)

    def item_profiles(self, items: np.ndarray) -> np.ndarray:
        """Standardised utilities of a user whose history is each single item: where a
        taste drifts to after consuming it."""
        return self.utilities(Histories.from_lists([[int(i)] for i in items]))


def _fit(family: str, params: dict, log: Interactions, dataset: Dataset) -> Recommender:
    cls = resolve_strategy(family)
    return cls(dict(params)).fit(TrainingData(log, dataset.catalog))


def fit_truth(dataset: Dataset, config: SimulationConfig) -> GroundTruth:
    """Fit the ground-truth family on all interactions and calibrate its temperature.

    Calibration: each user's last interaction (users with at least two) is held out,
    the family is fitted on the rest, and the temperature maximises the likelihood of
    the held-out items among each user's unseen items (up to 3,000 users, seeded).
    """
    log = dataset.interactions
    fixed = config.choice.temperature
    counts = log.user_counts
    last = log.user_indptr[1:][counts >= 2] - 1
    held = np.zeros(len(log), dtype=bool)
    held[last] = True
    train = log.select(~held)
    calib = _fit(config.truth, config.truth_params, train, dataset)
    rng = np.random.default_rng(config.seed)
    rows = np.sort(rng.permutation(len(last))[:_CALIBRATION_USERS])
    users = log.users[last[rows]].astype(np.int64)
    target = log.items[last[rows]].astype(np.int64)
    z = np.vstack(
        [
            standardise(calib.score(train.histories(users[lo : lo + _ROWS])))
            for lo in range(0, len(users), _ROWS)
        ]
    )
    seen = train.matrix(binary=True)[users]
    masked = np.where(seen.toarray() > 0, -np.inf, z)
    rank = (masked > masked[np.arange(len(target)), target][:, None]).sum(axis=1)
    ndcg = float(np.where(rank < 10, 1.0 / np.log2(rank + 2.0), 0.0).mean())
    temperature = fixed if fixed is not None else calibrate_temperature(z, seen, target)
    full = _fit(config.truth, config.truth_params, log, dataset)
    return GroundTruth(config.truth, full, temperature, ndcg, len(users))
