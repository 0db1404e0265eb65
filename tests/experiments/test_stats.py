"""Known answers for the A/B statistics: published worked examples, statsmodels as an
independent implementation, and simulations with a known truth (seeded)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import confint_proportions_2indep, proportions_ztest
from statsmodels.stats.weightstats import CompareMeans

from lmrec.experiments.stats import (
    DEFAULT_N_STAR,
    benjamini_hochberg,
    confidence_sequence,
    cuped,
    preference,
    ratio,
    sequential_p,
    srm,
    two_proportions,
    welch,
)


def _rho2(alpha: float, n_star: float) -> float:
    """The mixture's tuning, written out again so the tests do not reuse the module's."""
    return (-2 * math.log(alpha) + math.log(-2 * math.log(alpha) + 1)) / n_star


# --- welch ---------------------------------------------------------------------------


def test_welch_matches_statsmodels() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(10.0, 2.0, 150), rng.normal(10.6, 3.5, 90)
    c = welch(a, b, alpha=0.1)
    cm = CompareMeans.from_data(b, a)  # statsmodels reports data1 - data2
    _, p, _ = cm.ttest_ind(usevar="unequal")
    lo, hi = cm.tconfint_diff(alpha=0.1, usevar="unequal")
    assert c.method == "welch" and (c.n_a, c.n_b) == (150, 90)
    assert c.diff == pytest.approx(b.mean() - a.mean())
    assert c.p_value == pytest.approx(p, rel=1e-10)
    assert c.ci == pytest.approx((lo, hi), rel=1e-10)
    assert c.p_value == pytest.approx(sps.ttest_ind(b, a, equal_var=False).pvalue, rel=1e-10)
    # Being valid at every look costs width.
    assert c.seq_ci[0] < c.ci[0] and c.seq_ci[1] > c.ci[1]


def test_lift_ci_matches_monte_carlo_spread() -> None:
    rng = np.random.default_rng(2)
    n, experiments = 1000, 3000
    a = rng.normal(10.0, 4.0, (experiments, n))
    b = rng.normal(11.0, 5.0, (experiments, n))
    lifts = b.mean(axis=1) / a.mean(axis=1) - 1
    c = welch(a[0], b[0])
    implied_se = (c.lift_ci[1] - c.lift_ci[0]) / (2 * sps.norm.ppf(0.975))
    assert implied_se == pytest.approx(lifts.std(ddof=1), rel=0.1)
    assert c.lift == pytest.approx(b[0].mean() / a[0].mean() - 1)


# --- two proportions -----------------------------------------------------------------


@pytest.mark.parametrize(("s_a", "n_a", "s_b", "n_b"), [(120, 1000, 150, 1000), (33, 400, 21, 350)])
def test_two_proportions_matches_statsmodels(s_a: int, n_a: int, s_b: int, n_b: int) -> None:
    c = two_proportions(s_a, n_a, s_b, n_b)
    z, p = proportions_ztest([s_b, s_a], [n_b, n_a])  # pooled variance under the null
    lo, hi = confint_proportions_2indep(s_b, n_b, s_a, n_a, compare="diff", method="wald")
    assert (c.mean_a, c.mean_b) == pytest.approx((s_a / n_a, s_b / n_b))
    assert c.p_value == pytest.approx(p, rel=1e-10)
    assert c.ci == pytest.approx((lo, hi), rel=1e-10)
    table = np.array([[s_a, n_a - s_a], [s_b, n_b - s_b]])
    chi2, p_chi2, _, _ = sps.chi2_contingency(table, correction=False)
    assert z**2 == pytest.approx(chi2, rel=1e-10)
    assert sps.norm.isf(c.p_value / 2) ** 2 == pytest.approx(chi2, rel=1e-8)
    assert c.p_value == pytest.approx(p_chi2, rel=1e-10)


# --- Benjamini-Hochberg --------------------------------------------------------------

# Benjamini & Hochberg (1995), section 4.2: 15 p-values from a study of myocardial infarction.
BH_1995 = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459]
BH_1995 += [0.3240, 0.4262, 0.5719, 0.6528, 0.7590, 1.000]


def test_benjamini_hochberg_worked_example() -> None:
    _, rejected = benjamini_hochberg(BH_1995, alpha=0.05)
    assert rejected.tolist() == [True] * 4 + [False] * 11
    # Out of order, the answer follows the input's order.
    order = np.random.default_rng(3).permutation(15)
    _, shuffled = benjamini_hochberg(np.array(BH_1995)[order], alpha=0.05)
    assert shuffled.tolist() == (order < 4).tolist()


def test_benjamini_hochberg_matches_statsmodels() -> None:
    rng = np.random.default_rng(4)
    p = np.concatenate([rng.uniform(0, 0.01, 8), rng.uniform(0, 1, 40)])
    rng.shuffle(p)
    adjusted, rejected = benjamini_hochberg(p, alpha=0.1)
    sm_rejected, sm_adjusted, _, _ = multipletests(p, alpha=0.1, method="fdr_bh")
    np.testing.assert_allclose(adjusted, sm_adjusted, rtol=1e-12)
    assert rejected.tolist() == sm_rejected.tolist()
    empty_adjusted, empty_rejected = benjamini_hochberg([])
    assert empty_adjusted.size == 0 and empty_rejected.size == 0


# --- sample-ratio mismatch -----------------------------------------------------------


def test_srm_flags_a_skewed_split_only() -> None:
    skewed, fine = srm([5000, 4600], [0.5, 0.5]), srm([5000, 4990], [0.5, 0.5])
    assert skewed.flagged and not fine.flagged
    assert skewed.expected == [4800.0, 4800.0]
    assert skewed.p_value == pytest.approx(sps.chisquare([5000, 4600]).pvalue, rel=1e-10)
    assert fine.chi2 == pytest.approx(sps.chisquare([5000, 4990]).statistic, rel=1e-10)
    # 5000/4800 has p = 0.043: suspicious at 0.05, but not at the default 0.001.
    borderline = srm([5000, 4800], [0.5, 0.5])
    assert borderline.p_value == pytest.approx(0.0433, abs=1e-4) and not borderline.flagged
    assert srm([5000, 4800], [0.5, 0.5], threshold=0.05).flagged


def test_srm_unequal_shares_match_scipy() -> None:
    result = srm([9100, 870, 30], [90, 9, 1])  # shares are normalised
    expected = [9000.0, 900.0, 100.0]
    assert result.expected == pytest.approx(expected)
    ref = sps.chisquare([9100, 870, 30], f_exp=expected)
    assert (result.chi2, result.p_value) == pytest.approx((ref.statistic, ref.pvalue), rel=1e-10)
    assert result.flagged
    assert json.dumps(result.to_dict(), allow_nan=False)


# --- ratio metrics -------------------------------------------------------------------


def _ctr_experiments(rng: np.random.Generator, experiments: int, users: int, ctr: float):
    """Exposures and clicks per user; users' own CTRs vary, so requests are correlated."""
    exposures = rng.poisson(10.0, (experiments, users)) + 1
    user_ctr = rng.beta(5.0 * ctr, 5.0 * (1 - ctr), (experiments, users))
    return rng.binomial(exposures, user_ctr), exposures


def test_ratio_delta_variance_matches_monte_carlo() -> None:
    rng = np.random.default_rng(5)
    clicks_a, exp_a = _ctr_experiments(rng, 4000, 400, 0.10)
    clicks_b, exp_b = _ctr_experiments(rng, 4000, 400, 0.10)
    diffs = clicks_b.sum(1) / exp_b.sum(1) - clicks_a.sum(1) / exp_a.sum(1)
    spread = diffs.std(ddof=1)
    implied_se = []
    for i in range(50):
        c = ratio(clicks_a[i], exp_a[i], clicks_b[i], exp_b[i])
        assert c.method == "ratio-delta"
        assert c.mean_a == pytest.approx(clicks_a[i].sum() / exp_a[i].sum())
        assert c.diff == pytest.approx(diffs[i])
        implied_se.append((c.ci[1] - c.ci[0]) / (2 * sps.t.ppf(0.975, 798)))
    # One experiment's estimate varies by about 10%; their root mean square is the variance.
    assert math.sqrt(np.mean(np.square(implied_se))) == pytest.approx(spread, rel=0.05)
    # Treating requests as independent (binomial over exposures) understates it badly.
    p = clicks_a[0].sum() / exp_a[0].sum()
    naive = math.sqrt(p * (1 - p) * (1 / exp_a[0].sum() + 1 / exp_b[0].sum()))
    assert naive < 0.7 * spread


def test_ratio_with_unit_denominators_is_welch() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.exponential(2.0, 300), rng.exponential(2.3, 250)
    r = ratio(a, np.ones(300), b, np.ones(250), metric="m")
    w = welch(a, b, metric="m")
    for name in ("diff", "ci", "p_value", "lift", "lift_ci", "seq_ci", "seq_p_value"):
        assert getattr(r, name) == pytest.approx(getattr(w, name), rel=1e-10), name
    assert r.method == "ratio-delta" and w.method == "welch"


# --- CUPED ---------------------------------------------------------------------------


def test_cuped_theta_is_ols_slope_and_variance_falls_by_rho_squared() -> None:
    rng = np.random.default_rng(7)
    x_a, x_b = rng.normal(5, 2, 4000), rng.normal(5, 2, 4000)
    y_a, y_b = 3 + 1.5 * x_a + rng.normal(0, 2, 4000), 3 + 1.5 * x_b + rng.normal(0, 2, 4000)
    adj_a, adj_b, theta = cuped(y_a, y_b, x_a, x_b)
    x, y = np.concatenate([x_a, x_b]), np.concatenate([y_a, y_b])
    assert theta == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-10)
    rho = np.corrcoef(x, y)[0, 1]
    adjusted = np.concatenate([adj_a, adj_b])
    assert adjusted.var() == pytest.approx((1 - rho**2) * y.var(), rel=1e-6)
    assert (1 - rho**2) == pytest.approx(4 / (9 + 4), rel=0.05)  # 1.5^2 * 2^2 signal, 2^2 noise
    plain = welch(y_a, y_b)
    adj = welch(y_a, y_b, covariate_a=x_a, covariate_b=x_b)
    assert adj.method == "cuped"
    width, adj_width = plain.ci[1] - plain.ci[0], adj.ci[1] - adj.ci[0]
    assert adj_width == pytest.approx(width * math.sqrt(1 - rho**2), rel=0.02)


def test_cuped_keeps_the_difference_unbiased() -> None:
    rng = np.random.default_rng(8)
    n, experiments, effect = 300, 400, 0.5
    plain, adjusted = [], []
    for _ in range(experiments):
        x_a, x_b = rng.normal(0, 1, n), rng.normal(0, 1, n)
        y_a = x_a + rng.normal(0, 0.6, n)
        y_b = x_b + rng.normal(0, 0.6, n) + effect
        a, b, _ = cuped(y_a, y_b, x_a, x_b)
        plain.append(y_b.mean() - y_a.mean())
        adjusted.append(b.mean() - a.mean())
    plain_d, adj_d = np.array(plain), np.array(adjusted)
    # Mean within 4 standard errors of the truth; spread shrunk by sqrt(1 - rho^2).
    assert abs(adj_d.mean() - effect) < 4 * adj_d.std() / math.sqrt(experiments)
    rho2 = 1 / (1 + 0.36)
    assert adj_d.std() == pytest.approx(plain_d.std() * math.sqrt(1 - rho2), rel=0.15)


def test_ratio_accepts_cuped_covariates() -> None:
    rng = np.random.default_rng(9)
    clicks, exposures = _ctr_experiments(rng, 2, 2000, 0.1)
    # A pre-period count that tracks each user's clicks.
    pre = clicks + rng.poisson(1.0, clicks.shape)
    plain = ratio(clicks[0], exposures[0], clicks[1], exposures[1])
    adj = ratio(
        clicks[0], exposures[0], clicks[1], exposures[1], covariate_a=pre[0], covariate_b=pre[1]
    )
    assert adj.method == "cuped"
    assert adj.ci[1] - adj.ci[0] < 0.8 * (plain.ci[1] - plain.ci[0])


# --- confidence sequences ------------------------------------------------------------


@pytest.mark.parametrize(
    ("se", "n", "alpha", "n_star"), [(0.1, 500, 0.05, 10_000), (2.0, 20_000, 0.01, 3000)]
)
def test_sequential_p_is_alpha_where_the_sequence_touches_zero(
    se: float, n: int, alpha: float, n_star: int
) -> None:
    (lo, hi), _ = confidence_sequence(0.0, se, n, alpha=alpha, n_star=n_star)
    half = (hi - lo) / 2
    for diff in (half, -half):
        (lo, _), p = confidence_sequence(diff, se, n, alpha=alpha, n_star=n_star)
        assert p == pytest.approx(alpha, rel=1e-9)
    _, inside = confidence_sequence(0.9 * half, se, n, alpha=alpha, n_star=n_star)
    _, outside = confidence_sequence(1.1 * half, se, n, alpha=alpha, n_star=n_star)
    assert inside > alpha > outside


@pytest.mark.parametrize(("diff", "se", "n"), [(0.03, 0.01, 2000), (-1.0, 0.8, 80), (0.0, 1.0, 10)])
def test_sequential_p_is_one_over_the_mixture_likelihood_ratio(
    diff: float, se: float, n: int
) -> None:
    # Johari et al. (2017): normal mixture N(0, tau^2) over the effect, tau^2 = V rho^2.
    v = n * se**2
    tau2 = v * _rho2(0.05, DEFAULT_N_STAR)
    lam = math.sqrt(v / (v + n * tau2)) * math.exp(n**2 * tau2 * diff**2 / (2 * v * (v + n * tau2)))
    _, p = confidence_sequence(diff, se, n)
    assert p == pytest.approx(min(1.0, 1 / lam), rel=1e-10)


def test_confidence_sequence_is_valid_under_peeking_and_the_z_test_is_not() -> None:
    rng = np.random.default_rng(10)
    sequences, units, every, alpha = 300, 2000, 50, 0.05
    a, b = rng.normal(0, 1, (sequences, units)), rng.normal(0, 1, (sequences, units))
    looks = np.arange(every, units + 1, every)
    k = looks[None, :]

    def running(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s1, s2 = np.cumsum(x, 1)[:, looks - 1], np.cumsum(x**2, 1)[:, looks - 1]
        return s1 / k, (s2 - s1**2 / k) / (k - 1)

    (m_a, v_a), (m_b, v_b) = running(a), running(b)
    diff, se = m_b - m_a, np.sqrt((v_a + v_b) / k)
    z_rejects = (np.abs(diff / se) > sps.norm.ppf(1 - alpha / 2)).any(axis=1)
    cs_rejects = np.zeros(sequences, dtype=bool)
    for i in range(sequences):
        for j, look in enumerate(looks):
            (lo, hi), p = confidence_sequence(diff[i, j], se[i, j], 2 * look, n_star=2000)
            cs_rejects[i] |= lo > 0 or hi < 0
            assert (p <= alpha) == (lo > 0 or hi < 0)
    margin = 2.5 * math.sqrt(alpha * (1 - alpha) / sequences)
    assert cs_rejects.mean() <= alpha + margin
    assert z_rejects.mean() > 2 * alpha


def test_sequential_p_only_falls() -> None:
    assert sequential_p(None, 0.4) == 0.4
    assert sequential_p(0.2, 0.4) == 0.2
    assert sequential_p(0.2, 0.01) == 0.01
    with pytest.raises(ValueError, match="p-value"):
        sequential_p(0.2, 1.5)


# --- interleaving preference ---------------------------------------------------------


def test_preference_all_users_prefer_b() -> None:
    c = preference(np.zeros(30), np.ones(30) * 2)
    assert (c.diff, c.mean_a, c.mean_b, c.n_a) == (1.0, 0.0, 1.0, 30)
    assert c.p_value == pytest.approx(2 * 0.5**30)
    assert c.ci[1] == 1.0 and c.ci[0] > 0
    assert math.isnan(c.lift) and c.to_dict()["lift"] is None
    # Three unanimous users are not enough to stop a sequential test.
    few = preference([0, 0, 0], [1, 2, 1])
    assert few.seq_p_value > 0.5 and few.p_value == pytest.approx(0.25)


def test_preference_symmetric_data_has_no_preference() -> None:
    rng = np.random.default_rng(11)
    credit = rng.poisson(1.0, (2, 500))
    c = preference(np.concatenate(credit), np.concatenate(credit[::-1]))
    assert c.diff == 0.0 and c.mean_a == c.mean_b
    assert c.p_value == 1.0 and c.seq_p_value == 1.0
    assert c.ci[0] < 0 < c.ci[1]


def test_preference_counts_ties_and_skips_users_without_credit() -> None:
    # Users: prefers b, prefers b, prefers a, tie, no credit (dropped).
    c = preference([0, 1, 3, 2, 0], [1, 4, 0, 2, 0])
    assert c.n_a == c.n_b == 4
    assert (c.mean_a, c.mean_b, c.diff) == pytest.approx((0.25, 0.5, 0.25))
    assert c.p_value == pytest.approx(sps.binomtest(2, 3, 0.5).pvalue)


# --- edge cases and serialisation ----------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: welch([], [1.0, 2.0]), "arm a is empty"),
        (lambda: welch([1.0], [1.0, 2.0]), "has 1 user"),
        (lambda: welch([1.0, 1.0], [2.0, 2.0, 2.0]), "zero variance"),
        (lambda: welch([1.0, np.nan], [1.0, 2.0]), "nan"),
        (lambda: welch([1.0, 2.0], [1.0, 3.0], covariate_a=[1.0, 2.0]), "both arms"),
        (lambda: welch([1.0, 2.0], [1.0, 3.0], alpha=1.5), "alpha"),
        (lambda: two_proportions(0, 100, 0, 120), "no unit converted"),
        (lambda: two_proportions(0, 5, 1, 1), "zero variance"),
        (lambda: two_proportions(5, 0, 1, 10), "n >= 1"),
        (lambda: two_proportions(11, 10, 1, 10), "successes <= n"),
        (lambda: ratio([0, 0], [0, 0], [1, 0], [2, 1]), "denominators of arm a sum to 0"),
        (lambda: ratio([1, 0], [2, 1, 1], [1, 0], [2, 1]), "3 denominators"),
        (lambda: cuped([1.0, 2.0], [3.0, 4.0], [1.0, 1.0], [1.0, 1.0]), "constant"),
        (lambda: cuped([1.0, 2.0], [3.0, 4.0], [1.0], [1.0, 2.0]), "one value per user"),
        (lambda: preference([0, 0, 1], [0, 0, 0]), "1 users with credited clicks"),
        (lambda: preference([1, 2], [1, 2]), "0 with a preference"),
        (lambda: confidence_sequence(0.1, 0.0, 100), "se > 0"),
        (lambda: srm([10, 20], [0.5, 0.3, 0.2]), "one count and one share"),
        (lambda: srm([0, 0], [0.5, 0.5]), "no units"),
        (lambda: benjamini_hochberg([0.1, 1.2]), "p-values in"),
    ],
)
def test_degenerate_input_raises_a_clear_value_error(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_to_dict_is_json_safe() -> None:
    c = welch([0.0, 0.0, 0.0], [1.0, 2.0, 0.0])  # control mean 0: lift undefined
    d = c.to_dict()
    assert d["lift"] is None and d["lift_ci"] == [None, None]
    assert d["ci"] == list(c.ci) and d["method"] == "welch"
    assert json.loads(json.dumps(d, allow_nan=False)) == d
