"""Change points in one nightly series: did the level move, where, and by how much?

Pure numpy, no I/O. The method follows asv's (``asv/step_detect.py``): fit a piecewise
constant by least absolute deviations with a penalty per piece, then keep only the
jumps that matter. Here:

1. **Run-to-run spread** ``sigma``: the robust scale of night-to-night differences,
   ``1.4826 * median(|y[i+1] - y[i]|) / sqrt(2)``. A step moves one difference and an
   outlier night two, so neither inflates it the way a plain standard deviation would.
2. **Segments**: the exact minimiser, by dynamic programming, of the sum over pieces of
   ``sum |y - median(piece)|`` plus ``penalty * sigma`` per piece, every piece at least
   two nights long. Absolute deviations and medians make one wild night cost no more
   inside a piece than beside it, and the two-night minimum means it cannot be a piece of
   its own: **a single outlier night is not a step**.
3. **Thresholds**: adjacent pieces whose levels differ by less than
   ``max(min_effect (x level, when relative), factor * sigma)`` are merged, the smallest
   jump first, until every jump left is larger than both the minimum effect and the
   series' own noise. What remains are the steps; each starts on the first night of its
   new piece. ``factor`` is ``spread_factor`` (3) widened as Student's t widens a normal
   quantile, since ``sigma`` is itself estimated from the series' few differences (3.3
   with 30 differences, 4.9 with 6, 19 with 2). Without it, the ten real nights in
   ``results/reference/history/`` raised two false alarms (nights 8 and 9, one series
   each) beside the true one of night 7.
4. **The latest night** cannot be confirmed by a second one yet. It is compared with the
   rolling baseline (the median of up to ``window`` nights before it, since the last
   step) under the same thresholds, with the spread taken from the nights before it and
   widened by the baseline median's own noise (``sqrt(1 + (pi/2) / nights)``). A
   departure beyond them is reported as a *new* step: the next night confirms it (it
   becomes a step of the fit) or withdraws it (it was an outlier).

Fewer than ``MIN_NIGHTS`` nights give no verdict at all: a spread needs a few
differences before anything can exceed it.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.stats import norm as normal, t as student_t

MIN_NIGHTS = 4  # two before and two after for a step; three before the latest night for a new one
MIN_PIECE = 2  # nights on each side of a confirmed step
MAX_NIGHTS = 400  # the fit is O(n^2): older nights are shown but not fitted


@dataclass(frozen=True)
class Rule:
    """What counts as a step in one metric."""

    worse: int  # +1: a rise is a regression (energy); -1: a fall is (accuracy)
    min_effect: float  # smallest change that matters: a fraction of the level if relative, else absolute
    relative: bool
    spread_factor: float = 3.0  # a step must exceed this many run-to-run spreads
    penalty: float = 3.0  # per piece, in spreads: only a starting point, the thresholds decide
    window: int = 7  # nights in the rolling baseline

    def threshold(self, level: float, sigma: float, k: int) -> float:
        """The smallest jump that counts at ``level``, for a spread estimated from ``k``
        night-to-night differences: ``spread_factor`` spreads, widened as Student's t
        widens a normal quantile when the scale itself is an estimate (3 spreads with 30
        differences are 3.3; with 6, 4.9)."""
        effect = self.min_effect * abs(level) if self.relative else self.min_effect
        factor = float(student_t.ppf(normal.cdf(self.spread_factor), max(k, 1)))
        return max(effect, factor * sigma)

    def change(self, before: float, after: float) -> float:
        """The change as reported: relative (a fraction of ``before``) or absolute."""
        if self.relative:
            return (after - before) / abs(before) if before else math.inf
        return after - before


@dataclass(frozen=True)
class Step:
    index: int  # the first night of the new level
    before: float  # median level of the piece before
    after: float  # ... and of the piece it starts (for a new step: the latest night)
    change: float  # Rule.change(before, after)
    regression: bool
    new: bool = False  # starts on the latest night, not yet confirmed by a second


@dataclass(frozen=True)
class Verdict:
    n: int
    sigma: float  # run-to-run spread of the series (NaN with too few nights)
    steps: list[Step] = field(default_factory=list)  # confirmed: two nights or more on each side
    baseline: float = math.nan  # rolling baseline of the latest night
    latest_change: float = math.nan  # Rule.change(baseline, latest)
    new: Step | None = None  # the latest night departs from the baseline beyond the thresholds
    too_few: bool = False
    #: The night index a step just confirmed by the latest night starts at: the one before
    #: the latest of the nights with a value (series.py sets it where nights lack a value,
    #: and -1 when the latest night has none, which confirms nothing). None: n - MIN_PIECE.
    confirm_at: int | None = None

    @property
    def latest_regression(self) -> bool:
        """The latest night starts a regression step."""
        return self.new is not None and self.new.regression

    @property
    def confirmed(self) -> Step | None:
        """The regression step the latest night confirms: the fit's last step, with just
        the two nights of a confirmed piece after it (the night before started it, the
        latest one confirms it). None on every other night."""
        at = self.n - MIN_PIECE if self.confirm_at is None else self.confirm_at
        if self.steps and self.steps[-1].regression and self.steps[-1].index == at:
            return self.steps[-1]
        return None

    @property
    def gate(self) -> bool:
        """The nightly gate: the latest night starts a regression step, or confirms one.
        A step too small for one night's verdict (its first night inside the threshold)
        is found by the fit a night later: without the second rule the gate never closed
        for 16-18% of simulated series with a real +15-20% step."""
        return self.latest_regression or self.confirmed is not None


def spread(y: Sequence[float]) -> float:
    """Robust run-to-run spread from successive differences (NaN below two differences)."""
    y = np.asarray(y, dtype=float)
    if len(y) < 3:
        return math.nan
    return float(1.4826 * np.median(np.abs(np.diff(y))) / math.sqrt(2))


def _l1_costs(y: np.ndarray) -> np.ndarray:
    """cost[i, j] = sum |y[i..j] - median(y[i..j])|, every i <= j, by two running heaps
    (the lower half as a max-heap, the upper as a min-heap, each with its sum)."""
    n = len(y)
    cost = np.full((n, n), np.inf)
    for i in range(n):
        low: list[float] = []  # negated
        high: list[float] = []
        s_low = s_high = 0.0
        for j in range(i, n):
            v = float(y[j])
            if low and v > -low[0]:
                heapq.heappush(high, v)
                s_high += v
            else:
                heapq.heappush(low, -v)
                s_low += v
            if len(low) > len(high) + 1:  # rebalance: low holds the extra element
                m = -heapq.heappop(low)
                s_low -= m
                heapq.heappush(high, m)
                s_high += m
            elif len(high) > len(low):
                m = heapq.heappop(high)
                s_high -= m
                heapq.heappush(low, -m)
                s_low += m
            med = -low[0]
            cost[i, j] = (med * len(low) - s_low) + (s_high - med * len(high))
    return cost


def segments(y: Sequence[float], gamma: float, min_len: int = MIN_PIECE) -> list[int]:
    """Start indices of the pieces of the optimal penalised L1 fit (the first is 0)."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n < 2 * min_len:
        return [0]
    cost = _l1_costs(y)
    best = np.full(n + 1, np.inf)  # best[k]: optimal cost of y[:k]
    best[0] = 0.0
    start = np.zeros(n + 1, dtype=int)
    for k in range(min_len, n + 1):
        for i in range(0, k - min_len + 1):  # last piece y[i:k]
            if not math.isfinite(best[i]):
                continue
            c = best[i] + cost[i, k - 1] + gamma
            if c < best[k]:
                best[k], start[k] = c, i
    starts, k = [], n
    while k > 0:
        starts.append(int(start[k]))
        k = start[k]
    return sorted(starts)


def _toward(piece: np.ndarray, other: float) -> float:
    """A piece's level as a jump is judged: its median, but for a piece of MIN_PIECE
    nights the night nearest the neighbouring level. The median of two nights is their
    mean, so one wild night beside a normal one made half a step; now every night of a
    short piece must depart for the jump to count."""
    if len(piece) > MIN_PIECE:
        return float(np.median(piece))
    return float(piece[np.argmin(np.abs(piece - other))])


def _merge(y: np.ndarray, starts: list[int], rule: Rule, sigma: float) -> list[int]:
    """Merge adjacent pieces whose jump is within the thresholds, smallest jump first
    (a short piece judged by its night nearest its neighbour: ``_toward``)."""
    starts = list(starts)
    while len(starts) > 1:
        bounds = starts + [len(y)]
        pieces = [y[a:b] for a, b in zip(bounds, bounds[1:])]
        levels = [float(np.median(p)) for p in pieces]
        margins = [abs(_toward(pieces[k + 1], levels[k]) - _toward(pieces[k], levels[k + 1]))
                   / rule.threshold(levels[k], sigma, len(y) - 1) for k in range(len(levels) - 1)]
        k = int(np.argmin(margins))
        if margins[k] > 1.0:
            break
        del starts[k + 1]
    return starts


def detect(values: Sequence[float], rule: Rule) -> Verdict:
    """Steps and the latest night's verdict for one series, oldest night first."""
    y = np.asarray(values, dtype=float)
    n = len(y)
    if n < MIN_NIGHTS or not np.all(np.isfinite(y)):
        return Verdict(n=n, sigma=spread(y) if n >= 3 else math.nan, too_few=True)
    offset = max(0, n - MAX_NIGHTS)
    fit = y[offset:]
    sigma = spread(fit)
    starts = _merge(fit, segments(fit, rule.penalty * sigma), rule, sigma)
    steps = []
    bounds = starts + [len(fit)]
    for k in range(1, len(starts)):
        before = float(np.median(fit[bounds[k - 1]:bounds[k]]))
        after = float(np.median(fit[bounds[k]:bounds[k + 1]]))
        steps.append(Step(index=offset + bounds[k], before=before, after=after, change=rule.change(before, after),
                          regression=(after - before) * rule.worse > 0))
    # the latest night against the nights before it, since the last confirmed step
    since = steps[-1].index if steps else 0
    base_nights = y[max(since, n - 1 - rule.window):n - 1]
    if len(base_nights) == 0:  # the last step started on the night before: only it is the baseline
        base_nights = y[n - 2:n - 1]
    baseline = float(np.median(base_nights))
    latest = float(y[-1])
    sigma_before = spread(y[offset:n - 1])
    new = None
    # the baseline is a median of few nights: its own noise widens the spread it is held to
    sigma_latest = sigma_before * math.sqrt(1 + (math.pi / 2) / len(base_nights))
    if abs(latest - baseline) > rule.threshold(baseline, sigma_latest, n - 1 - offset - 1):
        new = Step(index=n - 1, before=baseline, after=latest, change=rule.change(baseline, latest),
                   regression=(latest - baseline) * rule.worse > 0, new=True)
    return Verdict(n=n, sigma=sigma, steps=steps, baseline=baseline,
                   latest_change=rule.change(baseline, latest), new=new)
