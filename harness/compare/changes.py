"""The tests of one variant between two sides: accuracy (paired where it can be), energy
(raw and against the drift of the same run: ``Relative``), and the work count."""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import mannwhitneyu

from harness import stats
from harness.compare.sides import Medians, Runs, Side, Thresholds
from harness.records import RunRecord
from harness.samples import correctness


@dataclass(frozen=True)
class AccuracyChange:
    base: float
    new: float
    delta: float
    p: float | None  # None: no test was possible (no paired examples)
    method: str
    separated: bool = False  # CI fallback only: the 95% intervals do not overlap


def accuracy_change(base: dict[int, RunRecord], new: dict[int, RunRecord]) -> AccuracyChange:
    acc_b = float(correctness(list(base.values())).mean())
    acc_n = float(correctness(list(new.values())).mean())
    seeds = sorted(s for s in base.keys() & new.keys() if base[s].eval.labels == new[s].eval.labels)
    if seeds:
        test = stats.paired_accuracy_test(correctness([base[s] for s in seeds]), correctness([new[s] for s in seeds]))
        return AccuracyChange(acc_b, acc_n, test.delta, test.p, test.method)
    ib = stats.accuracy_interval(correctness(list(base.values())))
    inew = stats.accuracy_interval(correctness(list(new.values())))
    return AccuracyChange(acc_b, acc_n, acc_n - acc_b, None, "95% CIs compared (no paired examples; no test)",
                          inew.hi < ib.lo or ib.hi < inew.lo)


def min_runs_per_side(alpha: float, tests: int) -> int:
    """Fewest runs per side at which a one-sided U test can reach alpha / tests (Holm's
    strictest step): its smallest p-value is 1 / C(2k, k)."""
    k = 1
    while 1 / math.comb(2 * k, k) >= alpha / max(tests, 1):
        k += 1
    return k


def run_medians(runs: Runs) -> Medians:
    """Each run's median J/inference per variant, once: both tests read these."""
    return {vid: {k: stats.median([j for r in g for j in r.inference.j_per_inference()]) for k, g in by_run.items()}
            for vid, by_run in runs.items()}


def u_test(new: list[float], base: list[float], alternative: str = "greater") -> float | None:
    if len(new) < 2 or len(base) < 2:
        return None
    return float(mannwhitneyu(new, base, alternative=alternative, method="exact").pvalue)


@dataclass(frozen=True)
class EnergyChange:
    base: float  # median over runs of the run medians, J/inference
    new: float
    change: float  # relative, raw
    p: float | None  # one-sided U p-value before Holm; None when untestable
    rel_change: float | None = None  # against the leave-one-out drift reference
    rel_p: float | None = None
    ref_change: float | None = None  # how the reference itself moved (NEW vs BASE)
    ref_fell_p: float | None = None  # one-sided U: did the reference fall in NEW?


class Relative:
    """The leave-one-out drift reference over both sides' run medians; variants in
    ``exclude`` (they moved on their own) are left out of every other one's reference."""

    def __init__(self, base: Medians, new: Medians, variants: list[str], exclude: frozenset[str] = frozenset()):
        self.variants = variants
        self.exclude = exclude
        # each variant on its own scale: log J/inference minus its median over BASE runs
        centre = {u: stats.median([math.log(m) for m in base[u].values()]) for u in variants}
        self.dev = {side: {u: {k: math.log(m) - centre[u] for k, m in med[u].items()} for u in variants}
                    for side, med in (("base", base), ("new", new))}

    def reference(self, vid: str) -> list[str]:
        """The variants ``vid``'s reference is built from."""
        return [u for u in self.variants if u != vid and u not in self.exclude]

    def series(self, vid: str, side: str) -> tuple[list[float], list[float]]:
        """(v's value minus the run's reference, the reference), per run of ``side``."""
        own, refs = [], []
        dev = self.dev[side]
        for k, value in dev[vid].items():
            others = [dev[u][k] for u in self.reference(vid) if k in dev[u]]
            if others:
                ref = stats.median(others)
                own.append(value - ref)
                refs.append(ref)
        return own, refs

    def change(self, vid: str) -> tuple[float, float | None] | None:
        """(relative change, two-sided U p) of ``vid`` against its reference, or None."""
        (xb, _), (xn, _) = self.series(vid, "base"), self.series(vid, "new")
        if not (xb and xn):
            return None
        return math.exp(stats.median(xn) - stats.median(xb)) - 1, u_test(xn, xb, "two-sided")


def movers(base: Medians, new: Medians, variants: list[str], th: Thresholds) -> frozenset[str]:
    """Variants that moved on their own: relative change beyond ``energy_rise`` either
    way, two-sided U p < alpha (unadjusted: leaving one more variant out of a median
    costs little). Found one at a time, the largest move first, each left out of the
    others' references before the next is sought: a mover pulls the reference of every
    other variant, and with few variants it would make them all look moved."""
    out: set[str] = set()
    while len(variants) - len(out) > 1:
        rel = Relative(base, new, variants, frozenset(out))
        found = []
        for vid in variants:
            got = None if vid in out else rel.change(vid)
            if got and abs(got[0]) > th.energy_rise and got[1] is not None and got[1] < th.alpha:
                found.append((abs(got[0]), vid))
        if not found:
            break
        out.add(max(found)[1])
    return frozenset(out)


def energy_change(vid: str, b: Runs, n: Runs, mb: Medians, mn: Medians, rel: Relative, th: Thresholds) -> EnergyChange:
    if th.windows_as_units:
        jb = [j for g in b[vid].values() for r in g for j in r.inference.j_per_inference()]
        jn = [j for g in n[vid].values() for r in g for j in r.inference.j_per_inference()]
        return EnergyChange(stats.median(jb), stats.median(jn), stats.median(jn) / stats.median(jb) - 1,
                            float(mannwhitneyu(jn, jb, alternative="greater").pvalue))
    base, new = stats.median(list(mb[vid].values())), stats.median(list(mn[vid].values()))
    raw = (base, new, new / base - 1, u_test(list(mn[vid].values()), list(mb[vid].values())))
    (xb, rb), (xn, rn) = rel.series(vid, "base"), rel.series(vid, "new")
    if not (xb and xn):
        return EnergyChange(*raw)
    return EnergyChange(*raw, math.exp(stats.median(xn) - stats.median(xb)) - 1, u_test(xn, xb),
                        math.exp(stats.median(rn) - stats.median(rb)) - 1, u_test(rn, rb, "less"))


@dataclass(frozen=True)
class WorkChange:
    """Instructions per inference (work.py): deterministic, so one run per side decides."""

    base: float  # median over the side's records (runs x seeds)
    new: float
    change: float  # relative
    spread: float | None  # largest max/min - 1 within either side (None: one record per side)
    tool: str


def work_counts(side: Side, vid: str) -> tuple[list[float], set[str]]:
    blocks = [r.inference.work for g in side.by_variant.get(vid, {}).values() for r in g if r.inference.work]
    return [w.per_inference for w in blocks if w.per_inference], {w.basis for w in blocks if w.per_inference}


def work_change(vid: str, base: Side, new: Side) -> tuple[WorkChange | None, str | None]:
    """The change in instructions per inference, or (None, why it is not compared)."""
    (cb, tb), (cn, tn) = work_counts(base, vid), work_counts(new, vid)
    if not cb or not cn:
        return None, None if not (cb or cn) else f"{vid}: instructions counted on one side only"
    if tb != tn:
        return None, (f"{vid}: instructions not compared: BASE was counted with {', '.join(sorted(tb))} and NEW with "
                      f"{', '.join(sorted(tn))}")
    spreads = [max(c) / min(c) - 1 for c in (cb, cn) if len(c) > 1]
    b, n = stats.median(cb), stats.median(cn)
    return WorkChange(b, n, n / b - 1, max(spreads) if spreads else None, next(iter(tb))), None


def estimate_only(base: Side, new: Side) -> bool:
    """Every inference window on both sides is the estimate meter's (CPU time x constants)."""
    return {w.method for side in (base, new) for r in side.ok() for w in r.inference.windows} == {"estimate"}


def holm(pvalues: dict[str, float | None]) -> dict[str, float]:
    tested = [v for v, p in pvalues.items() if p is not None]
    return dict(zip(tested, stats.holm([pvalues[v] for v in tested])))  # type: ignore[misc]
