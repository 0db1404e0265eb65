"""Statistics of A/B tests and interleaving: variant b against control a, one metric each.

Every test returns a `Comparison`, whatever the metric's kind:

- `welch`: a per-user mean (Welch's t-test, Welch–Satterthwaite degrees of freedom);
- `two_proportions`: a share of users (unpooled-variance CI, pooled-variance z-test);
- `ratio`: sum(num) / sum(den) per arm, e.g. CTR = clicks / exposures, its variance by
  the delta method over users, because one user's requests are not independent;
- `welch` and `ratio` with covariates: CUPED variance reduction (`cuped`);
- `preference`: interleaving, each user's preference for one team's results.

Besides the fixed-horizon CI and p-value (valid for one look at a planned sample size),
each carries an always-valid confidence sequence (`confidence_sequence`): it may be
looked at after every batch of data and the test stopped whenever it excludes 0, with
error at most alpha over all looks. A monitor keeps `sequential_p` over the looks.
Across many metrics, `benjamini_hochberg` controls the false discovery rate; `srm`
checks that units reached the arms in the configured shares.

Input that cannot be compared (an arm with fewer than 2 users, no variance in either
arm, mismatched lengths, nan) raises `ValueError` naming the metric and the problem,
so a report can show "not enough data" instead of numbers. Only `lift` and `lift_ci`
are ever nan: when the control mean is 0. `to_dict` writes nan as None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats as sps

__all__ = [
    "DEFAULT_N_STAR",
    "Comparison",
    "SRMResult",
    "benjamini_hochberg",
    "confidence_sequence",
    "cuped",
    "json_safe",
    "preference",
    "ratio",
    "sequential_p",
    "srm",
    "two_proportions",
    "welch",
]

#: Units (both arms together) at which a confidence sequence is tightest, by default.
#: Any value keeps the sequence valid; one near the sample size the experiment expects
#: to reach makes it narrowest there (about 1.5x the fixed-horizon CI, rather than 2-3x).
DEFAULT_N_STAR = 10_000


@dataclass(frozen=True)
class Comparison:
    """Variant b against control a on one metric.

    `method`: "welch", "two-proportion", "ratio-delta", "cuped" or "preference".
    `n_a`/`n_b`: units per arm (for "preference", both are the users with any credited
    click: every user saw both teams). `diff` = `mean_b - mean_a`, with its
    fixed-horizon (1 - alpha) `ci` and two-sided `p_value`; `lift` = `mean_b / mean_a - 1`
    with a delta-method `lift_ci`. `seq_ci`/`seq_p_value`: the always-valid confidence
    sequence and p-value at this look (`seq_p_value` is not yet the running minimum over
    looks; see `sequential_p`).
    """

    metric: str
    method: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float
    ci: tuple[float, float]
    p_value: float
    lift: float
    lift_ci: tuple[float, float]
    seq_ci: tuple[float, float]
    seq_p_value: float
    alpha: float

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-safe values: tuples as lists, nan and inf as None."""
        return {f.name: json_safe(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class SRMResult:
    """A sample-ratio-mismatch check: chi-square statistic, its p-value, whether the
    p-value is below the threshold, and the units expected per arm."""

    chi2: float
    p_value: float
    flagged: bool
    expected: list[float]

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-safe values."""
        return {f.name: json_safe(getattr(self, f.name)) for f in fields(self)}


def welch(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    metric: str = "mean",
    alpha: float = 0.05,
    covariate_a: npt.ArrayLike | None = None,
    covariate_b: npt.ArrayLike | None = None,
    n_star: float | None = None,
) -> Comparison:
    """Welch's t-test of per-user values `a` (control) and `b` (variant).

    With `covariate_a`/`covariate_b` (each user's pre-experiment value of a correlated
    quantity) the values are CUPED-adjusted first and `method` is "cuped"; the means
    reported are then the adjusted means.
    """
    _check_alpha(alpha)
    x_a, x_b = _arm(a, "arm a", metric), _arm(b, "arm b", metric)
    method = "welch"
    _check_covariates(covariate_a, covariate_b, metric)
    if covariate_a is not None and covariate_b is not None:
        x_a, x_b, _ = cuped(x_a, x_b, covariate_a, covariate_b)
        method = "cuped"
    return _compare_means(x_a, x_b, metric=metric, method=method, alpha=alpha, n_star=n_star)


def two_proportions(
    successes_a: int,
    n_a: int,
    successes_b: int,
    n_b: int,
    *,
    metric: str = "conversion",
    alpha: float = 0.05,
    n_star: float | None = None,
) -> Comparison:
    """Two-proportion test of `successes_b / n_b` against `successes_a / n_a`.

    The textbook pair: the CI uses the unpooled variance (Wald), the p-value the z-test
    with the variance pooled under the null of equal proportions (z^2 is the Pearson
    chi-square of the 2x2 table). The confidence sequence uses the unpooled variance.
    """
    _check_alpha(alpha)
    s_a, t_a = _count(successes_a, n_a, "a", metric)
    s_b, t_b = _count(successes_b, n_b, "b", metric)
    p_a, p_b = s_a / t_a, s_b / t_b
    pooled = (s_a + s_b) / (t_a + t_b)
    if pooled in (0.0, 1.0):
        raise ValueError(
            f"{metric}: {'no' if pooled == 0.0 else 'every'} unit converted in either arm; "
            "the difference has no variance yet"
        )
    var_a, var_b = p_a * (1 - p_a) / t_a, p_b * (1 - p_b) / t_b
    if var_a + var_b == 0.0:
        raise ValueError(f"{metric}: zero variance within both arms (shares of 0 or 1)")
    z = (p_b - p_a) / math.sqrt(pooled * (1 - pooled) * (1 / t_a + 1 / t_b))
    return _comparison(
        metric=metric,
        method="two-proportion",
        n_a=t_a,
        n_b=t_b,
        mean_a=p_a,
        mean_b=p_b,
        var_a=var_a,
        var_b=var_b,
        quantile=float(sps.norm.ppf(1 - alpha / 2)),
        p_value=float(2 * sps.norm.sf(abs(z))),
        alpha=alpha,
        n_star=n_star,
    )


def ratio(
    num_a: npt.ArrayLike,
    den_a: npt.ArrayLike,
    num_b: npt.ArrayLike,
    den_b: npt.ArrayLike,
    *,
    metric: str = "ctr",
    alpha: float = 0.05,
    covariate_a: npt.ArrayLike | None = None,
    covariate_b: npt.ArrayLike | None = None,
    n_star: float | None = None,
) -> Comparison:
    """A ratio metric, sum(num) / sum(den) per arm, from per-user numerators and
    denominators (e.g. clicks and exposures).

    Each user's value is linearised, l_i = (num_i - R den_i) / mean(den) + R with R the
    arm's ratio: mean(l) = R, and var(l) / n is the delta-method variance of R over users
    (Deng et al. 2018). The linearised values then go through the mean machinery (Welch,
    and CUPED when covariates are given; `method` is "ratio-delta" or "cuped").
    """
    _check_alpha(alpha)
    l_a = _linearise(num_a, den_a, "a", metric)
    l_b = _linearise(num_b, den_b, "b", metric)
    method = "ratio-delta"
    _check_covariates(covariate_a, covariate_b, metric)
    if covariate_a is not None and covariate_b is not None:
        l_a, l_b, _ = cuped(l_a, l_b, covariate_a, covariate_b)
        method = "cuped"
    return _compare_means(l_a, l_b, metric=metric, method=method, alpha=alpha, n_star=n_star)


def cuped(
    y_a: npt.ArrayLike, y_b: npt.ArrayLike, x_a: npt.ArrayLike, x_b: npt.ArrayLike
) -> tuple[np.ndarray, np.ndarray, float]:
    """CUPED (Deng et al. 2013): y_adj = y - theta (x - mean(x)), both arms.

    theta = cov(y, x) / var(x) and mean(x) are pooled over both arms, so the adjustment
    is the same function in each arm and, x being unaffected by the treatment, leaves the
    expected difference unchanged while the variance falls by about rho(y, x)^2.
    Returns the adjusted arms and theta.
    """
    ya, yb = _arm(y_a, "y_a", "cuped", min_n=1), _arm(y_b, "y_b", "cuped", min_n=1)
    xa, xb = _arm(x_a, "x_a", "cuped", min_n=1), _arm(x_b, "x_b", "cuped", min_n=1)
    if xa.size != ya.size or xb.size != yb.size:
        raise ValueError(
            f"cuped: covariates need one value per user: {xa.size}/{xb.size} covariates "
            f"for {ya.size}/{yb.size} users"
        )
    x, y = np.concatenate([xa, xb]), np.concatenate([ya, yb])
    if x.min() == x.max():
        raise ValueError("cuped: the covariate is constant over all users; it cannot adjust")
    x_mean = x.mean()
    xc = x - x_mean
    theta = float(xc @ (y - y.mean()) / (xc @ xc))
    return ya - theta * (xa - x_mean), yb - theta * (xb - x_mean), theta


def preference(
    credit_a: npt.ArrayLike,
    credit_b: npt.ArrayLike,
    *,
    alpha: float = 0.05,
    n_star: float | None = None,
) -> Comparison:
    """Interleaving preference test from each user's clicks credited to team a and team b.

    Over the users with any credit, s_i = sign(credit_b - credit_a) (ties count 0);
    `mean_a`/`mean_b` are the shares preferring a / b, `diff` = mean(s) in [-1, 1].
    `p_value` is the exact two-sided sign test (binomial, ties dropped), the standard
    test for interleaving and exact at any n. The CIs and `seq_p_value` use the variance
    of s under the null of no preference, mean(s^2) >= var(s): conservative, and never
    0 when all users agree, so a few unanimous users do not end a sequential test.
    Intervals are clipped to [-1, 1].
    """
    _check_alpha(alpha)
    c_a = _arm(credit_a, "credit_a", "preference", min_n=0)
    c_b = _arm(credit_b, "credit_b", "preference", min_n=0)
    if c_a.size != c_b.size or np.any(c_a < 0) or np.any(c_b < 0):
        raise ValueError("preference: credit_a and credit_b need one count >= 0 per user each")
    active = (c_a > 0) | (c_b > 0)
    s = np.sign(c_b[active] - c_a[active])
    n = int(s.size)
    wins_a, wins_b = int(np.sum(s < 0)), int(np.sum(s > 0))
    if n < 2 or wins_a + wins_b == 0:
        raise ValueError(
            f"preference: {n} users with credited clicks, {wins_a + wins_b} with a "
            "preference; need at least 2 users and 1 preference"
        )
    share_a, share_b = wins_a / n, wins_b / n
    se = math.sqrt((wins_a + wins_b) / n / n)
    return _comparison(
        metric="preference",
        method="preference",
        n_a=n,
        n_b=n,
        mean_a=share_a,
        mean_b=share_b,
        # Multinomial shares: var(p) = p (1 - p) / n, cov = -p_a p_b / n.
        var_a=share_a * (1 - share_a) / n,
        var_b=share_b * (1 - share_b) / n,
        cov_ab=-share_a * share_b / n,
        se=se,
        quantile=float(sps.norm.ppf(1 - alpha / 2)),
        p_value=float(sps.binomtest(wins_b, wins_a + wins_b, 0.5).pvalue),
        alpha=alpha,
        n_star=n_star,
        n_units=n,
        bounds=(-1.0, 1.0),
    )


def confidence_sequence(
    diff: float, se: float, n: float, *, alpha: float = 0.05, n_star: float | None = None
) -> tuple[tuple[float, float], float]:
    """Always-valid (1 - alpha) confidence sequence of `diff` at a look with `n` units.

    The asymptotic confidence sequence of Waudby-Smith et al. (2023), eq. 9: the
    normal-mixture boundary also used by GrowthBook's sequential testing and the mixture
    SPRT of Johari et al. (2017). With V = n se^2 the per-unit variance and
    rho^2 = (-2 ln alpha + ln(-2 ln alpha + 1)) / n_star (tightest at `n_star` units,
    default `DEFAULT_N_STAR`), the half-width is
    sqrt(V) sqrt(2 (n rho^2 + 1) / (n^2 rho^2) ln(sqrt(n rho^2 + 1) / alpha)), and the
    always-valid p-value, the alpha at which the sequence just touches 0, is
    min(1, sqrt(n rho^2 + 1) exp(-diff^2 n^2 rho^2 / (2 V (n rho^2 + 1)))).
    Returns ((low, high), p).
    """
    _check_alpha(alpha)
    n_star = DEFAULT_N_STAR if n_star is None else n_star
    if not (n >= 1 and n_star > 0 and math.isfinite(diff) and math.isfinite(se) and se > 0):
        raise ValueError(
            f"confidence_sequence: need n >= 1, n_star > 0, finite diff and se > 0; "
            f"got n={n}, n_star={n_star}, diff={diff}, se={se}"
        )
    v = n * se * se
    rho2 = (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n_star
    nr = n * rho2
    half = math.sqrt(v * 2 * (nr + 1) / (n * nr) * math.log(math.sqrt(nr + 1) / alpha))
    # In logs: exp(-x) underflows long before a p-value stops being meaningful to compare.
    log_p = 0.5 * math.log1p(nr) - diff * diff * n * nr / (2 * v * (nr + 1))
    return (diff - half, diff + half), min(1.0, math.exp(log_p))


def sequential_p(previous: float | None, current: float) -> float:
    """The always-valid p-value after a new look: the smaller of the running value
    (`previous`, None at the first look) and this look's `seq_p_value`.

    An always-valid p-value only ever falls: once the sequence has excluded 0 at some
    look, that evidence stands, so stopping at any look keeps the error below alpha.
    """
    if not 0.0 <= current <= 1.0:
        raise ValueError(f"sequential_p: a p-value must be in [0, 1], got {current}")
    return current if previous is None else min(previous, current)


def srm(counts: Sequence[int], shares: Sequence[float], *, threshold: float = 0.001) -> SRMResult:
    """Sample-ratio mismatch: chi-square goodness of fit of the units observed per arm
    (`counts`) against the configured `shares` (normalised to sum to 1).

    `flagged` when the p-value is below `threshold`; the strict default keeps false
    alarms rare when the check runs at every look, and a real assignment bug shows
    p-values far below it.
    """
    obs = np.asarray(counts, dtype=np.float64)
    w = np.asarray(shares, dtype=np.float64)
    if obs.ndim != 1 or obs.shape != w.shape or obs.size < 2:
        raise ValueError(
            f"srm: need one count and one share per arm (>= 2 arms), got {obs.shape} and {w.shape}"
        )
    if np.any(obs < 0) or np.any(w <= 0) or not np.all(np.isfinite(w)):
        raise ValueError("srm: counts must be >= 0 and shares > 0")
    total = obs.sum()
    if total == 0:
        raise ValueError("srm: no units observed yet")
    expected = total * w / w.sum()
    chi2 = float(np.sum((obs - expected) ** 2 / expected))
    p = float(sps.chi2.sf(chi2, obs.size - 1))
    return SRMResult(chi2=chi2, p_value=p, flagged=p < threshold, expected=expected.tolist())


def benjamini_hochberg(
    p_values: npt.ArrayLike, *, alpha: float = 0.05
) -> tuple[np.ndarray, np.ndarray]:
    """Benjamini–Hochberg (1995): adjusted p-values, in the input's order, and the mask of
    hypotheses rejected with the false discovery rate controlled at `alpha`."""
    _check_alpha(alpha)
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("benjamini_hochberg: need a 1-D array of p-values in [0, 1]")
    if p.size == 0:
        return p.copy(), np.zeros(0, dtype=bool)
    adjusted = np.asarray(sps.false_discovery_control(p, method="bh"), dtype=np.float64)
    return adjusted, adjusted <= alpha


def _compare_means(
    x_a: np.ndarray,
    x_b: np.ndarray,
    *,
    metric: str,
    method: str,
    alpha: float,
    n_star: float | None,
) -> Comparison:
    """Welch's t on two arms of per-user values (raw, linearised or CUPED-adjusted)."""
    if x_a.min() == x_a.max() and x_b.min() == x_b.max():
        raise ValueError(f"{metric}: zero variance: every user has the same value within each arm")
    n_a, n_b = x_a.size, x_b.size
    var_a, var_b = x_a.var(ddof=1) / n_a, x_b.var(ddof=1) / n_b
    se = math.sqrt(var_a + var_b)
    # Welch–Satterthwaite degrees of freedom.
    df = (var_a + var_b) ** 2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
    diff = float(x_b.mean() - x_a.mean())
    return _comparison(
        metric=metric,
        method=method,
        n_a=n_a,
        n_b=n_b,
        mean_a=float(x_a.mean()),
        mean_b=float(x_b.mean()),
        var_a=float(var_a),
        var_b=float(var_b),
        quantile=float(sps.t.ppf(1 - alpha / 2, df)),
        p_value=float(2 * sps.t.sf(abs(diff) / se, df)),
        alpha=alpha,
        n_star=n_star,
    )


def _comparison(
    *,
    metric: str,
    method: str,
    n_a: int,
    n_b: int,
    mean_a: float,
    mean_b: float,
    var_a: float,
    var_b: float,
    quantile: float,
    p_value: float,
    alpha: float,
    n_star: float | None,
    cov_ab: float = 0.0,
    se: float | None = None,
    n_units: int | None = None,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> Comparison:
    """A `Comparison` from the arms' means and the variances of those means.

    `se` of the difference defaults to sqrt(var_a + var_b - 2 cov_ab); `n_units`, the
    confidence sequence's n, to n_a + n_b.
    """
    diff = mean_b - mean_a
    if se is None:
        se = math.sqrt(var_a + var_b - 2 * cov_ab)
    n = n_a + n_b if n_units is None else n_units
    seq_ci, seq_p = confidence_sequence(diff, se, n, alpha=alpha, n_star=n_star)
    lo, hi = bounds
    z = float(sps.norm.ppf(1 - alpha / 2))
    lift, lift_ci = math.nan, (math.nan, math.nan)
    if mean_a != 0:
        lift = mean_b / mean_a - 1
        # Delta method for mean_b / mean_a.
        var = var_b / mean_a**2 + mean_b**2 * var_a / mean_a**4 - 2 * mean_b * cov_ab / mean_a**3
        half = z * math.sqrt(max(var, 0.0))
        lift_ci = (lift - half, lift + half)
    return Comparison(
        metric=metric,
        method=method,
        n_a=int(n_a),
        n_b=int(n_b),
        mean_a=float(mean_a),
        mean_b=float(mean_b),
        diff=float(diff),
        ci=(max(lo, diff - quantile * se), min(hi, diff + quantile * se)),
        p_value=min(1.0, p_value),
        lift=lift,
        lift_ci=lift_ci,
        seq_ci=(max(lo, seq_ci[0]), min(hi, seq_ci[1])),
        seq_p_value=seq_p,
        alpha=alpha,
    )


def _linearise(num: npt.ArrayLike, den: npt.ArrayLike, arm: str, metric: str) -> np.ndarray:
    """One arm's per-user linearised ratio values, l_i = (num_i - R den_i) / mean(den) + R."""
    x = _arm(num, f"numerators of arm {arm}", metric)
    d = _arm(den, f"denominators of arm {arm}", metric)
    if x.size != d.size:
        raise ValueError(f"{metric}: arm {arm} has {x.size} numerators but {d.size} denominators")
    if d.sum() <= 0:
        raise ValueError(f"{metric}: the denominators of arm {arm} sum to {d.sum():g}; need > 0")
    r = x.sum() / d.sum()
    return (x - r * d) / d.mean() + r


def _arm(values: npt.ArrayLike, name: str, metric: str, *, min_n: int = 2) -> np.ndarray:
    """Per-user values as a 1-D float array, with at least `min_n` finite values."""
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"{metric}: {name} must be one value per user (1-D), got shape {x.shape}")
    if x.size < min_n:
        what = "is empty" if x.size == 0 else f"has {x.size} user"
        raise ValueError(f"{metric}: {name} {what}; need at least {min_n} users")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{metric}: {name} contains nan or inf")
    return x


def _count(successes: int, n: int, arm: str, metric: str) -> tuple[int, int]:
    """An arm's (successes, units) as ints, with 0 <= successes <= units and units >= 1."""
    s, t = float(successes), float(n)
    if not (s.is_integer() and t.is_integer() and 0 <= s <= t and t >= 1):
        raise ValueError(
            f"{metric}: arm {arm} needs whole counts with 0 <= successes <= n and n >= 1, "
            f"got successes={successes}, n={n}"
        )
    return int(s), int(t)


def _check_covariates(covariate_a: object, covariate_b: object, metric: str) -> None:
    """Covariates come for both arms or for neither."""
    if (covariate_a is None) != (covariate_b is None):
        raise ValueError(f"{metric}: give covariates for both arms or for neither")


def _check_alpha(alpha: float) -> None:
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")


def json_safe(value: Any) -> Any:
    """nan/inf -> None and tuples -> lists, recursively (into dicts too); other values unchanged."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
