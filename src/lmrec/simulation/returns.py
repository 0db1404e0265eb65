"""The return/churn model: who comes back each round, and who has left for good.

Each round an active user returns with probability `sigmoid(a + b * (s - ref))` and,
after a visit, leaves with probability `sigmoid(c - b * (s - ref))`, where `s` is the
user's recent satisfaction. `a` and `c` come from the log when it has real
timestamps (`fit_returns`): sessions are runs of events without a gap longer than
`session_gap_seconds`; the per-round return rate is the geometric maximum-likelihood
estimate from the gaps between a user's sessions (in rounds), and the leave hazard
is users who left (their last session ends more than `churn_seconds` before the log
does) per session. How satisfaction moves them (`sensitivity`) cannot be read from a
log without impressions; it is a documented default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lmrec.data.interactions import Interactions
from lmrec.simulation.config import ReturnConfig

__all__ = ["ReturnModel", "fit_returns", "session_gaps"]

#: Timestamps below this (1973-03-03) are taken to be row order, not Unix time.
_UNIX_MIN = 1e8
#: Defaults for logs without real timestamps.
DEFAULT_RETURN_RATE = 0.5
DEFAULT_LEAVE_HAZARD = 0.02


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def session_gaps(log: Interactions, config: ReturnConfig) -> tuple[np.ndarray, int, int]:
    """Gaps between consecutive sessions in rounds (ceil), the number of sessions and of
    users who left, from the log's timestamps."""
    ts, indptr = log.timestamps, log.user_indptr
    end = float(ts.max()) if len(ts) else 0.0
    gaps: list[np.ndarray] = []
    sessions = left = 0
    for u in range(log.n_users):
        t = np.sort(ts[indptr[u] : indptr[u + 1]])
        if not len(t):
            continue
        starts = t[np.r_[True, np.diff(t) > config.session_gap_seconds]]
        sessions += len(starts)
        gaps.append(np.ceil(np.diff(starts) / config.round_seconds))
        left += int(end - t[-1] > config.churn_seconds)
    return (np.concatenate(gaps) if gaps else np.zeros(0)), sessions, left


@dataclass(frozen=True)
class ReturnModel:
    """Fitted return and leave probabilities, and where each came from."""

    return_rate: float
    leave_hazard: float
    sensitivity: float
    reference: float
    source: str
    log_gaps: dict[str, float] = field(default_factory=dict)

    def returns(self, satisfaction: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Which active users (by their satisfaction) come back this round."""
        p = _sigmoid(_logit(self.return_rate) + self.sensitivity * (satisfaction - self.reference))
        return rng.random(len(satisfaction)) < p

    def leaves(self, satisfaction: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Which visiting users (by their satisfaction after the visit) leave for good."""
        if self.leave_hazard <= 0:
            return np.zeros(len(satisfaction), dtype=bool)
        p = _sigmoid(_logit(self.leave_hazard) - self.sensitivity * (satisfaction - self.reference))
        return rng.random(len(satisfaction)) < p


def _summary(gaps: np.ndarray) -> dict[str, float]:
    if not len(gaps):
        return {}
    return {
        "n": float(len(gaps)),
        "mean": float(gaps.mean()),
        "median": float(np.median(gaps)),
        "p90": float(np.quantile(gaps, 0.9)),
        "share_1": float((gaps <= 1).mean()),
    }


def fit_returns(log: Interactions, config: ReturnConfig) -> ReturnModel:
    """The return model for `log`: rates fitted to its session gaps when it has Unix
    timestamps (unless `config` fixes them), else the documented defaults."""
    timed = len(log) > 0 and float(log.timestamps.min()) >= _UNIX_MIN
    rate, hazard, source, summary = DEFAULT_RETURN_RATE, DEFAULT_LEAVE_HAZARD, "defaults", {}
    if timed:
        gaps, sessions, left = session_gaps(log, config)
        if len(gaps) and gaps.sum() > 0:
            rate = float(len(gaps) / gaps.sum())
        hazard = left / max(1, sessions)
        source = "fitted to session gaps"
        summary = _summary(gaps)
    if config.return_rate is not None:
        rate, source = config.return_rate, source + "; return_rate set"
    if config.leave_hazard is not None:
        hazard, source = config.leave_hazard, source + "; leave_hazard set"
    return ReturnModel(rate, hazard, config.sensitivity, config.reference, source, summary)
