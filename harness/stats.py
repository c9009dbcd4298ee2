"""Small, exact statistics for the report: no bootstrap where a closed form exists."""

from __future__ import annotations

import math
from typing import Sequence

Z95 = 1.959963984540054


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score 95% interval for a proportion; sound near 0 and 1, unlike p +- 1.96 se."""
    if n <= 0:
        raise ValueError("wilson needs n > 0")
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def median(values: Sequence[float]) -> float:
    s = sorted(values)
    n = len(s)
    if n == 0:
        raise ValueError("median of nothing")
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def median_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float]:
    """Distribution-free interval for the median from order statistics.

    [x_(j), x_(n-j+1)] covers the median with probability 1 - 2 P(Binom(n, 1/2) < j);
    j is the largest index keeping that >= ``level``. Needs n >= 6 for 95%.
    """
    s = sorted(values)
    n = len(s)
    alpha = 1 - level
    j, tail = 0, 0.0
    while True:
        next_tail = tail + math.comb(n, j) / 2 ** n  # P(Binom < j + 1)
        if 2 * next_tail > alpha:
            break
        tail, j = next_tail, j + 1
    if j == 0:
        raise ValueError(f"{n} values are too few for a {level:.0%} median interval (need >= 6)")
    return s[j - 1], s[n - j]


def cv(values: Sequence[float]) -> float:
    """Coefficient of variation (sample std / mean)."""
    n = len(values)
    if n < 2:
        return float("nan")
    mean = sum(values) / n
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return math.sqrt(var) / mean if mean else float("nan")


def mcnemar(parent_correct: Sequence[bool], variant_correct: Sequence[bool]) -> tuple[int, int, float]:
    """Paired McNemar test on the same eval examples: (b, c, two-sided p).

    b = parent right and variant wrong, c = the reverse. With b + c < 25 the exact
    binomial form is used (the chi-square approximation is poor there); otherwise the
    chi-square statistic with continuity correction, 1 degree of freedom.
    """
    if len(parent_correct) != len(variant_correct):
        raise ValueError("McNemar needs the same examples for both models")
    b = sum(1 for p, v in zip(parent_correct, variant_correct) if p and not v)
    c = sum(1 for p, v in zip(parent_correct, variant_correct) if v and not p)
    n = b + c
    if n == 0:
        return b, c, 1.0
    if n < 25:
        tail = sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2 ** n
        return b, c, min(1.0, 2 * tail)
    chi2 = (abs(b - c) - 1) ** 2 / n
    return b, c, math.erfc(math.sqrt(chi2 / 2))


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
