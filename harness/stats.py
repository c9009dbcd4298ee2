"""Statistics for the report and compare, each valid for its unit.

Units, and why they matter here:
- **examples**: with one seed, the eval examples are the only sampling unit: Wilson
  interval for accuracy, McNemar for a paired difference (scipy does the arithmetic).
- **seeds x examples**: with several seeds the same eval examples are scored by each
  seed's model, so 3 seeds x 450 examples are not 1,350 independent trials. Accuracy
  and paired differences then use a two-level bootstrap that resamples seeds and
  examples together (``seed_example_bootstrap``); it accounts for both the spread over
  training seeds and the sampling of eval examples. With few seeds (< ~5) it still
  understates the spread over seeds (a bootstrap cannot see beyond the seeds it has),
  which is why the table prints the std over seeds beside it.
- **windows**: the median-of-windows interval is valid for *this run's* windows only;
  windows of one run share its machine state, so it says nothing about run-to-run drift
  (the report labels it "within run"). compare uses runs as units for energy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from scipy import stats as sps

#: Resamples for the bootstrap; fixed seed, so a table is reproducible to the digit.
BOOTSTRAP_RESAMPLES = 4000
BOOTSTRAP_SEED = 0


def wilson(correct: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion; sound near 0 and 1, unlike p +- 1.96 se."""
    if n <= 0:
        raise ValueError("wilson needs n > 0")
    ci = sps.binomtest(correct, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def median(values: Sequence[float]) -> float:
    if len(values) == 0:
        raise ValueError("median of nothing")
    return float(np.median(values))


def median_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval for the median from order statistics.

    [x_(j), x_(n-j+1)] covers the median with probability 1 - 2 P(Binom(n, 1/2) < j);
    j is the largest index keeping that >= ``level``. Needs n >= 6 for 95%.
    """
    s = sorted(values)
    n = len(s)
    j = 0
    while 2 * sps.binom.cdf(j, n, 0.5) <= 1 - level:  # P(Binom < j + 1)
        j += 1
    if j == 0:
        raise ValueError(f"{n} values are too few for a {level:.0%} median interval (need >= 6)")
    return s[j - 1], s[n - j]


def cv(values: Sequence[float]) -> float:
    """Coefficient of variation (sample std / mean)."""
    if len(values) < 2:
        return float("nan")
    mean = float(np.mean(values))
    return float(np.std(values, ddof=1)) / mean if mean else float("nan")


def std(values: Sequence[float]) -> float:
    """Sample std; NaN for fewer than two values (no spread to report)."""
    return float(np.std(values, ddof=1)) if len(values) >= 2 else float("nan")


def mcnemar(parent_correct: Sequence[bool], variant_correct: Sequence[bool]) -> tuple[int, int, float]:
    """Paired McNemar test on the same eval examples (one seed): (b, c, two-sided p).

    b = parent right and variant wrong, c = the reverse. With b + c < 25 the exact
    binomial form (scipy ``binomtest``, p = 1/2); otherwise chi-square with continuity
    correction, 1 degree of freedom.
    """
    if len(parent_correct) != len(variant_correct):
        raise ValueError("McNemar needs the same examples for both models")
    b = sum(1 for p, v in zip(parent_correct, variant_correct) if p and not v)
    c = sum(1 for p, v in zip(parent_correct, variant_correct) if v and not p)
    n = b + c
    if n == 0:
        return b, c, 1.0
    if n < 25:
        return b, c, float(sps.binomtest(min(b, c), n, 0.5).pvalue)
    chi2 = (abs(b - c) - 1) ** 2 / n
    return b, c, float(sps.chi2.sf(chi2, 1))


def seed_example_bootstrap(matrix: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                           seed: int = BOOTSTRAP_SEED) -> np.ndarray:
    """Bootstrap distribution of the mean of a (seeds x examples) matrix, resampling
    seeds and examples (with replacement, independently): each replicate weighs seed s
    by how often it was drawn and example i likewise."""
    m = np.asarray(matrix, dtype=np.float64)
    s, n = m.shape
    rng = np.random.default_rng(seed)
    w_seed = rng.multinomial(s, np.full(s, 1 / s), size=resamples)  # (B, S)
    w_example = rng.multinomial(n, np.full(n, 1 / n), size=resamples)  # (B, N)
    return np.einsum("bs,sn,bn->b", w_seed, m, w_example) / (s * n)


@dataclass(frozen=True)
class Interval:
    lo: float
    hi: float
    method: str  # what the unit was, for the footnote


def accuracy_interval(correct: np.ndarray, level: float = 0.95) -> Interval:
    """95% interval for accuracy from a (seeds x examples) 0/1 matrix: Wilson over
    examples for one seed; the seeds x examples bootstrap (percentile) for several."""
    correct = np.atleast_2d(np.asarray(correct, dtype=bool))
    s, n = correct.shape
    if s == 1:
        lo, hi = wilson(int(correct.sum()), n, level)
        return Interval(lo, hi, "Wilson (examples)")
    dist = seed_example_bootstrap(correct)
    tail = (1 - level) / 2
    return Interval(float(np.quantile(dist, tail)), float(np.quantile(dist, 1 - tail)),
                    f"bootstrap ({s} seeds x {n} examples)")


@dataclass(frozen=True)
class PairedTest:
    delta: float  # variant - parent accuracy
    p: float  # two-sided
    method: str


def paired_accuracy_test(parent: np.ndarray, variant: np.ndarray) -> PairedTest:
    """Two models scored on the same (seeds x examples): McNemar for one seed; for
    several, a paired bootstrap over seeds and examples (the same resampled seeds and
    examples for both), with p = 2 x the smaller tail share of deltas on either side of
    zero, counting the observed one ((k + 1) / (B + 1): never 0)."""
    parent = np.atleast_2d(np.asarray(parent, dtype=bool))
    variant = np.atleast_2d(np.asarray(variant, dtype=bool))
    if parent.shape != variant.shape:
        raise ValueError("a paired test needs the same seeds and examples for both models")
    s, n = parent.shape
    delta = float(variant.mean() - parent.mean())
    if s == 1:
        _, _, p = mcnemar(parent[0].tolist(), variant[0].tolist())
        return PairedTest(delta, p, "McNemar")
    diff = variant.astype(np.int8) - parent.astype(np.int8)
    if not diff.any():
        return PairedTest(0.0, 1.0, f"paired bootstrap ({s} seeds x {n} examples)")
    dist = seed_example_bootstrap(diff)
    b = len(dist)
    tail = min(int((dist <= 0).sum()), int((dist >= 0).sum()))
    return PairedTest(delta, min(1.0, 2 * (tail + 1) / (b + 1)), f"paired bootstrap ({s} seeds x {n} examples)")


def bootstrap_p_floor(resamples: int = BOOTSTRAP_RESAMPLES) -> float:
    """The smallest p the paired bootstrap can give: 2 x (0 + 1) / (B + 1)."""
    return 2 / (resamples + 1)


def p_text(p: float, method: str) -> str:
    """``p=0.0312``, ``p<0.001`` below a thousandth, or ``p≤0.0005`` where a bootstrap p sits at its floor (no resample
    fell on the other side of zero: the true p may be far smaller). Every output prints
    this text (LaTeX escapes ≤ as $\\leq$)."""
    if "bootstrap" in method and p <= bootstrap_p_floor() * (1 + 1e-9):
        return f"p≤{p:.2g}"
    return "p<0.001" if p < 1e-3 else f"p={p:.3g}"  # plain notation, as papers print it


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values: a nightly compares many variants at once, and
    without it one of eight A/A variants crosses alpha by chance a third of the time."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    out = [1.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        out[i] = running
    return out


def spearman(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, str]:
    """Spearman's rho with a permutation p (two-sided): exact over every pairing up to 8
    points (scipy's asymptotic p reads 0 for 4 points in the same order, where the exact
    p is 2/24), a seeded Monte Carlo of 100,000 pairings above. Returns (rho, p, method)."""
    from scipy.stats import permutation_test, rankdata

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    exact = len(x) <= 8
    ry = rankdata(y) - (len(y) + 1) / 2

    def rho(a: np.ndarray, axis: int = -1) -> np.ndarray:  # spearmanr's statistic, for a batch of pairings
        ra = rankdata(a, axis=axis)
        ra = ra - ra.mean(axis=axis, keepdims=True)
        return (ra * ry).sum(axis=axis) / np.sqrt((ra ** 2).sum(axis=axis) * (ry ** 2).sum())

    res = permutation_test((x,), rho, permutation_type="pairings", vectorized=True,
                           n_resamples=np.inf if exact else 100_000, rng=0)
    return float(res.statistic), float(res.pvalue), ("exact permutation" if exact else "100,000 permutations")
