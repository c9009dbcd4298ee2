"""Closed-form statistics against values worked out by hand."""

from __future__ import annotations

import pytest

from harness import stats


def test_wilson_known_values() -> None:
    lo, hi = stats.wilson(8, 10)
    assert (lo, hi) == pytest.approx((0.4902, 0.9433), abs=1e-4)
    lo, hi = stats.wilson(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)


def test_median_ci_order_statistics() -> None:
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 6.0]
    assert stats.median(values) == 3.5
    assert stats.median_ci(values) == (1.0, 6.0)  # n=6: coverage 1 - 2/64 = 96.9%
    ten = list(range(1, 11))
    assert stats.median_ci(ten) == (2, 9)  # n=10: j=2, coverage 97.9%
    with pytest.raises(ValueError, match="need >= 6"):
        stats.median_ci([1, 2, 3, 4, 5])


def test_cv() -> None:
    assert stats.cv([1.0, 1.0, 1.0]) == 0.0
    assert stats.cv([1.0, 3.0]) == pytest.approx(2 ** 0.5 / 2)


def test_against_scipy_on_many_inputs() -> None:
    """Our Wilson, McNemar and median-CI agree with scipy's own computations."""
    import numpy as np
    from scipy import stats as sps

    rng = np.random.default_rng(1)
    for _ in range(200):
        n = int(rng.integers(1, 2000))
        k = int(rng.integers(0, n + 1))
        ci = sps.binomtest(k, n).proportion_ci(method="wilson")
        assert stats.wilson(k, n) == pytest.approx((ci.low, ci.high), abs=1e-12)
    for b, c in [(0, 6), (3, 9), (12, 12), (5, 40), (30, 10)]:
        parent = [True] * b + [False] * c
        variant = [False] * b + [True] * c
        p = stats.mcnemar(parent, variant)[2]
        if b + c < 25:
            assert p == pytest.approx(sps.binomtest(b, b + c, 0.5).pvalue)
        else:  # chi-square with continuity correction, as statsmodels' mcnemar(exact=False)
            assert p == pytest.approx(sps.chi2.sf((abs(b - c) - 1) ** 2 / (b + c), 1))
    for n in range(6, 40):  # the order-statistic interval really covers the median at >= 95%
        lo_rank = stats.median_ci(list(range(n)))[0]
        coverage = 1 - 2 * sps.binom.cdf(lo_rank, n, 0.5)
        assert coverage >= 0.95 and 1 - 2 * sps.binom.cdf(lo_rank + 1, n, 0.5) < 0.95


def test_seed_interval_widens_when_seeds_disagree() -> None:
    """Seeds x examples are not independent trials: three seeds that disagree widen the
    interval beyond what pooling 3 x 450 answers would claim; seeds that agree do not."""
    import numpy as np

    rng = np.random.default_rng(0)
    n = 450
    agree = np.tile(rng.random(n) < 0.9, (3, 1))  # three seeds, identical answers
    pooled_lo, pooled_hi = stats.wilson(int(agree.sum()), agree.size)  # the old, pooled interval
    same = stats.accuracy_interval(agree)
    assert same.method.startswith("bootstrap (3 seeds")
    # identical seeds: only the examples vary; about the one-seed Wilson width, wider than pooled
    one = stats.accuracy_interval(agree[:1])
    assert same.hi - same.lo == pytest.approx(one.hi - one.lo, rel=0.15)
    assert same.hi - same.lo > 1.5 * (pooled_hi - pooled_lo)
    # planted disagreement: seeds at 0.80, 0.90, 0.97 accuracy
    disagree = np.stack([rng.random(n) < a for a in (0.80, 0.90, 0.97)])
    wide = stats.accuracy_interval(disagree)
    assert wide.hi - wide.lo > 2 * (same.hi - same.lo)
    assert wide.lo < disagree.mean() < wide.hi


def test_paired_test_across_seeds() -> None:
    import numpy as np

    rng = np.random.default_rng(2)
    parent = rng.random((3, 450)) < 0.9
    # absent: per seed, 6 right answers turn wrong and 6 wrong ones turn right
    noisy = parent.copy()
    for s in range(3):
        noisy[s, np.flatnonzero(parent[s])[:6]] = False
        noisy[s, np.flatnonzero(~parent[s])[:6]] = True
    same = stats.paired_accuracy_test(parent, noisy)
    assert same.delta == 0 and same.p > 0.5 and same.method.startswith("paired bootstrap (3 seeds")
    assert stats.paired_accuracy_test(parent, parent).p == 1.0
    # planted: the variant loses 8% of the parent's correct answers on every seed
    worse = parent & (rng.random(parent.shape) > 0.08)
    test = stats.paired_accuracy_test(parent, worse)
    assert test.delta < -0.05 and 0 < test.p < 0.01  # significant, and never printed as p = 0
    # one seed: McNemar, as before
    assert stats.paired_accuracy_test(parent[:1], worse[:1]).method == "McNemar"


def test_holm() -> None:
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5, 0.001]) == pytest.approx([0.5, 0.002])


def test_a_bootstrap_p_at_its_floor_reads_as_a_bound() -> None:
    """With 4,000 resamples the paired bootstrap cannot give p below 2/4001: printed
    "p≤0.0005", never "p=0.0005"; a p above the floor and McNemar's are plain."""
    floor = stats.bootstrap_p_floor()
    assert floor == pytest.approx(2 / 4001)
    assert stats.p_text(floor, "paired bootstrap (3 seeds x 450 examples)") == "p≤0.0005"
    assert stats.p_text(0.03, "paired bootstrap (3 seeds x 450 examples)") == "p=0.03"
    assert stats.p_text(floor, "McNemar") == "p<0.001"  # below a thousandth: plain, as papers print it
    assert stats.p_text(0.0123, "McNemar") == "p=0.0123"
