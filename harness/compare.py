"""``joulebench compare BASE NEW``: did a change make any variant less accurate or more
energy-hungry? Exit 1 on a regression beyond the thresholds, 0 otherwise.

BASE and NEW are each one run dir or several (comma-separated): repeated runs of the
same suite. Per variant present on both sides:

- **accuracy**: paired on the same eval examples and seeds when both sides have them
  (McNemar for one seed; a paired seeds x examples bootstrap for several: stats.py),
  Holm-adjusted across variants. A regression is a drop larger than ``acc_drop`` that
  is significant at ``alpha`` after Holm. Without paired examples, the 95% intervals
  are compared and the output says so; no p-value is printed, because none was computed.

- **energy**: the unit is the *run*, not the window. Windows of one run share that
  run's machine state (a window-level test called every variant of a real A/A here
  "significant"). Each run contributes its median J/inference per variant; two
  one-sided Mann-Whitney U tests run over those run medians, Holm-adjusted across
  variants:
  * raw: did J/inference rise? Catches a change that makes every variant costlier,
    but only beyond the machine's run-to-run drift.
  * relative: did it rise against the drift of the same run, as the *other* variants
    saw it? Each variant's run median is first put on its own scale (log, minus its
    median over the BASE runs); a run's drift for variant v is the median of the other
    variants' values in that run (v left out). A change in one variant must not flag
    another (the geometric mean of the others, used before, flagged all seven innocent
    variants when one got 50% cheaper), so the reference is built in two passes: the
    first finds the variants that moved on their own (relative change beyond
    ``energy_rise``, two-sided U p < alpha), the second leaves those out of every other
    variant's reference. And if a variant's reference itself fell significantly in NEW
    (many others got cheaper, or NEW ran on a faster machine state), a relative rise is
    not attributed to it: the verdict is withheld and the output says why. Blind to a
    change that hits every variant equally: that is what the raw test is for.
  A regression needs significance at ``alpha`` after Holm and a median rise above
  ``energy_rise``. With too few runs to reach significance the changes are printed,
  not gated, and the output says how many runs it takes. ``windows_as_units``
  replaces both by the window-level raw test, for machines whose own A/A shows
  run-to-run drift below the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from scipy.stats import mannwhitneyu

from harness import stats
from harness.errors import UserError
from harness.records import RunRecord
from harness.table import correctness, load_run_dirs


@dataclass(frozen=True)
class Thresholds:
    acc_drop: float = 0.01  # fraction (1 point)
    energy_rise: float = 0.05  # relative
    alpha: float = 0.05
    windows_as_units: bool = False


Runs = dict[str, dict[int, list[RunRecord]]]  # variant -> run dir index -> its records
Medians = dict[str, dict[int, float]]  # variant -> run dir index -> median J/inference


def _load(dirs: list[Path]) -> tuple[Runs, list[RunRecord], list[str]]:
    runs: Runs = {}
    every: list[RunRecord] = []
    warnings: list[str] = []
    for i, d in enumerate(dirs):
        recs, warn = load_run_dirs([d])
        warnings += warn
        every += recs
        for r in recs:
            if r.ok:
                runs.setdefault(r.variant_id, {}).setdefault(i, []).append(r)
    return runs, every, warnings


def _one_per_seed(runs: dict[int, list[RunRecord]]) -> dict[int, RunRecord]:
    """Repeated runs re-measure the same trained models: count each seed's eval once."""
    seen: dict[int, RunRecord] = {}
    for group in runs.values():
        for r in group:
            seen.setdefault(r.seed, r)
    return seen


@dataclass(frozen=True)
class AccuracyChange:
    base: float
    new: float
    delta: float
    p: float | None  # None: no test was possible (no paired examples)
    method: str
    separated: bool = False  # CI fallback only: the 95% intervals do not overlap


def _accuracy(base: dict[int, RunRecord], new: dict[int, RunRecord]) -> AccuracyChange:
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


def _run_medians(runs: Runs) -> Medians:
    """Each run's median J/inference per variant, once: both tests read these."""
    return {vid: {k: stats.median([j for r in g for j in r.inference.j_per_inference()]) for k, g in by_run.items()}
            for vid, by_run in runs.items()}


def _u(new: list[float], base: list[float], alternative: str = "greater") -> float | None:
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

    def series(self, vid: str, side: str) -> tuple[list[float], list[float]]:
        """(v's value minus the run's reference, the reference), per run of ``side``."""
        own, refs = [], []
        dev = self.dev[side]
        for k, value in dev[vid].items():
            others = [dev[u][k] for u in self.variants if u != vid and u not in self.exclude and k in dev[u]]
            if others:
                ref = stats.median(others)
                own.append(value - ref)
                refs.append(ref)
        return own, refs

    def moved(self, th: Thresholds) -> frozenset[str]:
        """Variants that moved on their own: relative change beyond ``energy_rise`` in
        either direction, two-sided U p < alpha (unadjusted: leaving one more variant out
        of a median costs little)."""
        out = set()
        for vid in self.variants:
            (xb, _), (xn, _) = self.series(vid, "base"), self.series(vid, "new")
            if not (xb and xn):
                continue
            change = math.exp(stats.median(xn) - stats.median(xb)) - 1
            p = _u(xn, xb, "two-sided")
            if abs(change) > th.energy_rise and p is not None and p < th.alpha:
                out.add(vid)
        return frozenset(out)


def _energy(vid: str, b: Runs, n: Runs, mb: Medians, mn: Medians, rel: Relative, th: Thresholds) -> EnergyChange:
    if th.windows_as_units:
        jb = [j for g in b[vid].values() for r in g for j in r.inference.j_per_inference()]
        jn = [j for g in n[vid].values() for r in g for j in r.inference.j_per_inference()]
        return EnergyChange(stats.median(jb), stats.median(jn), stats.median(jn) / stats.median(jb) - 1,
                            float(mannwhitneyu(jn, jb, alternative="greater").pvalue))
    base, new = stats.median(list(mb[vid].values())), stats.median(list(mn[vid].values()))
    raw = (base, new, new / base - 1, _u(list(mn[vid].values()), list(mb[vid].values())))
    (xb, rb), (xn, rn) = rel.series(vid, "base"), rel.series(vid, "new")
    if not (xb and xn):
        return EnergyChange(*raw)
    return EnergyChange(*raw, math.exp(stats.median(xn) - stats.median(xb)) - 1, _u(xn, xb),
                        math.exp(stats.median(rn) - stats.median(rb)) - 1, _u(rn, rb, "less"))


def _holm(pvalues: dict[str, float | None]) -> dict[str, float]:
    tested = [v for v, p in pvalues.items() if p is not None]
    return dict(zip(tested, stats.holm([pvalues[v] for v in tested])))  # type: ignore[misc]


def _fmt(p: float | None) -> str:
    return "-" if p is None else f"{p:.3g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1%}"


def compare(base_dirs: list[Path], new_dirs: list[Path], th: Thresholds = Thresholds()) -> tuple[list[str], int]:
    """(report lines, exit code)."""
    b_var, base, w1 = _load(base_dirs)
    n_var, new, w2 = _load(new_dirs)
    for what in ("suite", "task"):
        sa, sb = {getattr(r, what) for r in base}, {getattr(r, what) for r in new}
        if sa != sb:
            raise UserError(f"cannot compare {what} {', '.join(sorted(sa))} with {', '.join(sorted(sb))}; "
                            f"compare runs of the same {what}")
    devices = [{f"{r.device.get('type', 'cpu')} {r.device.get('model') or ''}".strip() for r in side if r.ok}
               for side in (base, new)]
    if devices[0] != devices[1]:
        raise UserError(f"BASE ran on {', '.join(sorted(devices[0]))} and NEW on {', '.join(sorted(devices[1]))}; "
                        "energy per inference is not comparable across devices: compare runs on the same device")
    lines = [f"warning: {w}" for w in w1 + w2]
    unit = "windows" if th.windows_as_units else "runs"
    lines.append(f"{'variant':22s} {'acc base':>8s} {'acc new':>8s} {'delta':>8s} {'p(Holm)':>8s}  "
                 f"{'J/inf base':>10s} {'J/inf new':>10s} {'change':>8s} {'p(U)':>8s} {'rel chg':>8s} {'p(U)':>8s} "
                 f"{'runs':>5s}  verdict")
    shared = sorted(set(b_var) & set(n_var))
    mb, mn = _run_medians(b_var), _run_medians(n_var)
    moved = frozenset() if th.windows_as_units else Relative(mb, mn, shared).moved(th)
    rel = Relative(mb, mn, shared, exclude=moved)
    energy = {vid: _energy(vid, b_var, n_var, mb, mn, rel, th) for vid in shared}
    accuracy = {vid: _accuracy(_one_per_seed(b_var[vid]), _one_per_seed(n_var[vid])) for vid in shared}
    acc_p = _holm({v: a.p for v, a in accuracy.items()})
    raw_p = _holm({v: e.p for v, e in energy.items()})
    rel_p = _holm({v: e.rel_p for v, e in energy.items()})
    regressions = 0
    notes: list[str] = []
    for vid in sorted(set(b_var) | set(n_var)):
        if vid not in shared:
            lines.append(f"{vid:22s} only in {'NEW' if vid in n_var else 'BASE'}; not compared")
            continue
        a, e = accuracy[vid], energy[vid]
        verdicts = []
        if a.delta < -th.acc_drop and (acc_p[vid] < th.alpha if vid in acc_p else a.separated):
            verdicts.append(f"ACCURACY REGRESSION ({a.method.split(' (')[0]})")
        if vid in raw_p and e.change > th.energy_rise and raw_p[vid] < th.alpha:
            verdicts.append("ENERGY REGRESSION")
        if vid in rel_p and e.rel_change is not None and e.rel_change > th.energy_rise and rel_p[vid] < th.alpha:
            if e.ref_fell_p is not None and e.ref_fell_p < th.alpha:
                notes.append(f"{vid}: {e.rel_change:+.1%} against the others, but the others' reference itself fell "
                             f"{e.ref_change:+.1%} (U p {e.ref_fell_p:.3g}): the others got cheaper or NEW ran on a "
                             "faster machine state, so the relative rise is not attributed to it")
            else:
                verdicts.append("ENERGY REGRESSION (relative to the other variants)")
        regressions += bool(verdicts)
        k = f"{len(b_var[vid])}/{len(n_var[vid])}"
        lines.append(f"{vid:22s} {a.base:8.4f} {a.new:8.4f} {a.delta:+8.4f} {_fmt(acc_p.get(vid)):>8s}  "
                     f"{e.base:10.3e} {e.new:10.3e} {e.change:+8.1%} {_fmt(raw_p.get(vid)):>8s} "
                     f"{_pct(e.rel_change):>8s} {_fmt(rel_p.get(vid)):>8s} {k:>5s}  {'; '.join(verdicts) or 'ok'}")
    methods = sorted({a.method for a in accuracy.values()})
    lines.append(f"\n{regressions} regression(s); thresholds: accuracy drop > {th.acc_drop:g} and energy rise > "
                 f"{th.energy_rise:.0%}, each significant at alpha {th.alpha:g} after Holm across variants. "
                 f"Accuracy: {'; '.join(methods)}. Energy: one-sided U tests over {unit}, raw and relative to a "
                 "leave-one-out median of the other variants' drift in the same run")
    if moved:
        lines.append(f"moved on their own, so left out of the other variants' reference: {', '.join(sorted(moved))}")
    lines += [f"withheld: {n}" for n in notes]
    if any(a.p is None for a in accuracy.values()):
        lines.append("accuracy without paired examples (different seeds or eval labels): a regression needs "
                     "non-overlapping 95% intervals; no p-value is printed because no test was run")
    tested = list(raw_p)
    need = min_runs_per_side(th.alpha, len(shared))
    if len(tested) < len(shared):
        lines.append(f"energy not gated for {len(shared) - len(tested)} variant(s): one run per side cannot "
                     f"separate a change from run-to-run drift; repeat base and new interleaved "
                     f"(base, new, new, base, ...), >= {need} runs per side for {len(shared)} variants")
    elif not th.windows_as_units and any(min(len(b_var[v]), len(n_var[v])) < need for v in shared):
        lines.append(f"note: fewer than {need} runs per side; the U test cannot reach alpha after Holm's "
                     f"adjustment, so energy cannot fail this comparison")
    return lines, 1 if regressions else 0
