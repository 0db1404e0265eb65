import numpy as np

from lmrec.evaluation.significance import bootstrap_ci, paired_test


def test_ci_contains_mean_and_narrows_with_n():
    rng = np.random.default_rng(1)
    small = rng.random(100)
    large = rng.random(10_000)
    a, b = bootstrap_ci(small), bootstrap_ci(large)
    assert a.low < small.mean() < a.high
    assert (b.high - b.low) < (a.high - a.low) / 5  # width shrinks ~ 1/sqrt(n)


def test_paired_test_detects_a_real_difference_and_not_a_fake_one():
    rng = np.random.default_rng(2)
    base = rng.random(2000)
    better = base + 0.05
    t = paired_test(better, base)
    assert abs(t.diff.mean - 0.05) < 1e-9
    assert t.p_bootstrap < 0.01 and t.p_ttest < 0.01
    noise = base + rng.normal(0, 0.01, size=base.shape)
    t2 = paired_test(noise, noise[rng.permutation(len(noise))])
    assert t2.p_ttest > 0.01
