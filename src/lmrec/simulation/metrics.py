"""Per-round measures of what a strategy does to users and to the catalogue.

`RoundRecord` holds one round's raw outcome (slates, choices, states); `round_metrics`
turns it into the reported figures. Definitions:

- `ctr`: visits with a click / visits; `conversion`: visits with a purchase / visits;
  `satisfaction`: mean standardised utility (current taste) of chosen items;
- `active_users`: users who visited this round; `retention`: share of the simulated
  users who have not left;
- `coverage`: distinct items shown / items available this round;
- `gini`: Gini of cumulative exposure, i.e. of each available item's consumption
  count in the log plus every simulated consumption so far (popularity amplification
  makes it rise); `gini_shown`: Gini of this round's impressions;
- `avg_popularity` / `avg_popularity_consumed`: mean share of log users who consumed
  a shown / chosen item; `long_tail_share` (`_consumed`): share outside the head (the
  top `head_share` of items by log popularity; new items are tail);
- `diversity`: intra-list diversity (mean pairwise cosine distance in a slate);
- `homogenisation`: mean Jaccard overlap between visiting users' slates;
  `homogenisation_consumed`: between users' simulated consumption so far;
- `taste_drift`: mean cosine distance of users' tastes from their starting taste;
- segments: `*_niche` / `*_mainstream` for the least mainstream `niche_share` of users
  (mean log popularity of their history) and the rest; `new_item_share` of impressions
  on items that arrived during the run, `ctr_new_items` / `ctr_old_items` clicks per
  impression of new / old items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from lmrec.ranking.metrics import gini, intra_list_diversity

__all__ = ["RoundRecord", "jaccard_homogenisation", "round_metrics"]


@dataclass(eq=False)
class RoundRecord:
    """One round's outcome. `slates` (visitors x k world item indexes, -1 padding);
    `chosen` item per visitor (-1: no click); `rows` the visitors' user rows."""

    round: int
    rows: np.ndarray
    slates: np.ndarray
    chosen: np.ndarray
    converted: np.ndarray
    chosen_utility: np.ndarray
    exposure: np.ndarray
    consumed: sp.csr_matrix
    available: np.ndarray
    retained: np.ndarray
    drift: np.ndarray


def jaccard_homogenisation(sets: sp.csr_matrix, max_users: int, rng: np.random.Generator) -> float:
    """Mean Jaccard overlap over all pairs of rows (binary item sets) with at least one item;
    `max_users` rows are sampled first when there are more."""
    x = sets.tocsr().astype(np.float64)
    x.data[:] = 1.0
    keep = np.flatnonzero(np.diff(x.indptr) > 0)
    if len(keep) > max_users:
        keep = np.sort(rng.choice(keep, max_users, replace=False))
    if len(keep) < 2:
        return float("nan")
    x = x[keep]
    size = np.asarray(x.sum(axis=1)).ravel()
    inter = (x @ x.T).toarray()
    union = size[:, None] + size[None, :] - inter
    jac = inter / np.maximum(union, 1e-12)
    n = len(keep)
    return float((jac.sum() - np.trace(jac)) / (n * (n - 1)))


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if len(x) else float("nan")


def _slate_sets(slates: np.ndarray, n_items: int) -> sp.csr_matrix:
    rows = np.repeat(np.arange(len(slates)), slates.shape[1])
    cols = slates.ravel()
    ok = cols >= 0
    return sp.csr_matrix(
        (np.ones(int(ok.sum())), (rows[ok], cols[ok])), shape=(len(slates), n_items)
    )


def round_metrics(
    rec: RoundRecord,
    popularity: np.ndarray,
    n_log_users: int,
    head: np.ndarray,
    new_items: np.ndarray,
    niche: np.ndarray,
    vectors: np.ndarray,
    max_pairs_users: int,
    rng: np.random.Generator,
) -> dict[str, float]:
    """The reported figures of one round (see the module docstring)."""
    n_items = len(popularity)
    shown = rec.slates[rec.slates >= 0]
    clicked = rec.chosen >= 0
    picks = rec.chosen[clicked]
    share = popularity / max(1, n_log_users)
    tail = ~head | new_items
    full = rec.slates[(rec.slates >= 0).all(axis=1)]
    impressions = np.bincount(shown, minlength=n_items)
    clicks = np.bincount(picks, minlength=n_items)
    avail = rec.available
    niche_rows = niche[rec.rows]
    out = {
        "round": float(rec.round),
        "active_users": float(len(rec.rows)),
        "retention": float(rec.retained.mean()),
        "ctr": _mean(clicked.astype(np.float64)),
        "conversion": _mean(rec.converted.astype(np.float64)),
        "satisfaction": _mean(rec.chosen_utility[clicked]),
        "coverage": float(len(np.unique(shown)) / max(1, int(avail.sum()))),
        "gini": gini(rec.exposure[avail]),
        "gini_shown": gini(impressions[avail]),
        "avg_popularity": _mean(share[shown]),
        "avg_popularity_consumed": _mean(share[picks]),
        "long_tail_share": _mean(tail[shown].astype(np.float64)),
        "long_tail_share_consumed": _mean(tail[picks].astype(np.float64)),
        "diversity": _mean(intra_list_diversity(full, vectors)) if len(full) else float("nan"),
        "homogenisation": jaccard_homogenisation(
            _slate_sets(rec.slates, n_items), max_pairs_users, rng
        ),
        "homogenisation_consumed": jaccard_homogenisation(rec.consumed, max_pairs_users, rng),
        "taste_drift": _mean(rec.drift),
        "new_item_share": _mean(new_items[shown].astype(np.float64)),
        "ctr_new_items": float(clicks[new_items].sum() / max(1, impressions[new_items].sum())),
        "ctr_old_items": float(clicks[~new_items].sum() / max(1, impressions[~new_items].sum())),
    }
    for name, mask in (("niche", niche_rows), ("mainstream", ~niche_rows)):
        out[f"ctr_{name}"] = _mean(clicked[mask].astype(np.float64))
        out[f"satisfaction_{name}"] = _mean(rec.chosen_utility[clicked & mask])
        out[f"avg_popularity_{name}"] = _mean(share[rec.slates[mask][rec.slates[mask] >= 0]])
        seg = niche if name == "niche" else ~niche
        out[f"retention_{name}"] = _mean(rec.retained[seg].astype(np.float64))
    return out
