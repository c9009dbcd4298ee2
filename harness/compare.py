"""``joulebench compare BASE NEW``: did a change make any variant less accurate or more
energy-hungry? Exit 1 on a regression beyond the thresholds, 0 otherwise.

BASE and NEW are each one run dir or several (comma-separated): repeated runs of the
same suite (a run given twice on one side counts once). They must have been measured
the same way: the same suite, task and device, the same energy method, the same
machine (host and the CPU as the kernels see it: ISA flags, torch's CPU capability,
cores, memory) and the same resolved config; any difference is refused in one line
that shows it, unless ``allow`` names it, and the output then says what differed.

``decide`` returns a ``Comparison`` (one ``Verdict`` per variant: its tests, the
reference used, what was withheld and why); ``render`` only prints it.

Per variant present on both sides:

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
    ``energy_rise``, two-sided U p < alpha) one at a time, the largest first, each left
    out of every other variant's reference before the next is looked for (so with three
    variants one mover does not drag both references along and mark all three), the
    second leaves those out of every other variant's reference. Where no unmoved variant
    is left to build a reference from, the output says so in one line.
    If a variant's reference itself fell significantly in NEW, that is either the
    machine (NEW ran on a faster state) or the other variants (they got cheaper). The
    runs say which: a variant whose artifact keys (trained module, runtime file),
    resolved run config and package versions are the same in BASE and NEW ran the same
    code path on the same model, so it did not get cheaper by itself. When every variant
    in the reference is unchanged so, its fall is drift and the relative rise stands (the
    output says the reference fell and why that is drift); otherwise the verdict is
    withheld and the output names the changed variants. Blind to a change that hits
    every variant equally: that is what the raw test is for.
  A regression needs significance at ``alpha`` after Holm and a median rise above
  ``energy_rise``. With too few runs to reach significance the changes are printed,
  not gated, and the output says how many runs it takes. ``windows_as_units``
  replaces both by the window-level raw test, for machines whose own A/A shows
  run-to-run drift below the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scipy.stats import mannwhitneyu

from harness import comparable, rundir, stats, work
from harness.errors import UserError
from harness.records import RunRecord
from harness.table import correctness



@dataclass(frozen=True)
class Thresholds:
    acc_drop: float = 0.01  # fraction (1 point)
    energy_rise: float = 0.05  # relative
    alpha: float = 0.05
    windows_as_units: bool = False
    work_rise: float = 0.02  # relative rise of instructions per inference that counts

    #: Each threshold's range, for every entry (the command line's options read it too).
    RANGES = {"acc_drop": (0.0, 1.0), "energy_rise": (0.0, 100.0), "alpha": (0.0, 0.5), "work_rise": (0.0, 100.0)}

    def __post_init__(self) -> None:
        for name, (lo, hi) in self.RANGES.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                    or not lo <= value <= hi or (name == "alpha" and value == 0):
                raise UserError(f"compare threshold {name} is {value!r}; give a number from {lo:g} to {hi:g}"
                                + (" above 0" if name == "alpha" else ""))


Runs = dict[str, dict[int, list[RunRecord]]]  # variant -> run index -> its records
Medians = dict[str, dict[int, float]]  # variant -> run index -> median J/inference


@dataclass
class Side:
    """One side's runs (each once), their records by variant and run, and what the
    refusals compare."""

    runs: list[rundir.RunDir]
    by_variant: Runs
    records: list[RunRecord]
    warnings: list[str]

    def ok(self) -> list[RunRecord]:
        return [r for r in self.records if r.ok]


def _load(dirs: list[Path]) -> Side:
    runs = rundir.read_many(dirs)
    by_variant: Runs = {}
    for i, run in enumerate(runs):
        for r in run.records:
            if r.ok:
                by_variant.setdefault(r.variant_id, {}).setdefault(i, []).append(r)
    return Side(runs, by_variant, [r for run in runs for r in run.records], [w for run in runs for w in run.warnings])


def _one_per_seed(runs: dict[int, list[RunRecord]]) -> dict[int, RunRecord]:
    """Repeated runs re-measure the same trained models: count each seed's eval once."""
    seen: dict[int, RunRecord] = {}
    for group in runs.values():
        for r in group:
            seen.setdefault(r.seed, r)
    return seen


# -- what must match --------------------------------------------------------------------
def _differences(base: Side, new: Side) -> dict[str, str]:
    """What differs between the sides, by the name --allow takes (meter, machine, config),
    in words; the facets and what counts as a difference are comparable.py's."""
    found = comparable.differences(base.runs, new.runs)
    words = {"meter": "BASE and NEW were measured by other methods: {}",
             "machine": "BASE and NEW ran on different machines: {}",
             "config": "BASE and NEW ran other resolved configs ({}: another profile, or the suite changed)"}
    return {k: words[k].format(found[k]) for k in words if k in found}


def _evidence(vid: str, base: Side, new: Side) -> str | None:
    """None when ``vid`` ran the same model through the same code path on both sides
    (same artifact keys, run config and package versions), else what changed."""
    def sig(side: Side) -> set[tuple]:
        return {(r.seed, r.artifact_key, r.runtime.get("artifact_key"), r.run_config_hash)
                for g in side.by_variant.get(vid, {}).values() for r in g}

    if sig(base) != sig(new):
        return "artifact key or run config"
    return None


def _packages_changed(base: Side, new: Side) -> list[str]:
    """Package versions, and the measuring code (comparable.code: its digest, or the commit
    of a run made before the digest existed), that differ between the sides."""
    found = comparable.differences(base.runs, new.runs)
    out = [part.split(" ")[0] for part in found.get("packages", "").split("; ") if part]
    if "code" in found:
        out.append(f"the measuring code (measure.py, meters, runtimes, runner: {found['code']})")
    return out


# -- tests ------------------------------------------------------------------------------
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
        return math.exp(stats.median(xn) - stats.median(xb)) - 1, _u(xn, xb, "two-sided")


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


@dataclass(frozen=True)
class WorkChange:
    """Instructions per inference (work.py): deterministic, so one run per side decides."""

    base: float  # median over the side's records (runs x seeds)
    new: float
    change: float  # relative
    spread: float | None  # largest max/min - 1 within either side (None: one record per side)
    tool: str


def _work_counts(side: Side, vid: str) -> tuple[list[float], set[str]]:
    blocks = [r.inference.work for g in side.by_variant.get(vid, {}).values() for r in g if r.inference.work]
    return [w.per_inference for w in blocks if w.per_inference], {w.basis for w in blocks if w.per_inference}


def _work(vid: str, base: Side, new: Side) -> tuple[WorkChange | None, str | None]:
    """The change in instructions per inference, or (None, why it is not compared)."""
    (cb, tb), (cn, tn) = _work_counts(base, vid), _work_counts(new, vid)
    if not cb or not cn:
        return None, None if not (cb or cn) else f"{vid}: instructions counted on one side only"
    if tb != tn:
        return None, (f"{vid}: instructions not compared: BASE was counted with {', '.join(sorted(tb))} and NEW with "
                      f"{', '.join(sorted(tn))}")
    spreads = [max(c) / min(c) - 1 for c in (cb, cn) if len(c) > 1]
    b, n = stats.median(cb), stats.median(cn)
    return WorkChange(b, n, n / b - 1, max(spreads) if spreads else None, next(iter(tb))), None


def _estimate_only(base: Side, new: Side) -> bool:
    """Every inference window on both sides is the estimate meter's (CPU time x constants)."""
    return {w.method for side in (base, new) for r in side.ok() for w in r.inference.windows} == {"estimate"}


def _holm(pvalues: dict[str, float | None]) -> dict[str, float]:
    tested = [v for v, p in pvalues.items() if p is not None]
    return dict(zip(tested, stats.holm([pvalues[v] for v in tested])))  # type: ignore[misc]


# -- verdicts ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Verdict:
    """One variant's outcome: its tests, what it was measured against, and why."""

    variant: str
    only_in: str | None = None  # "BASE" or "NEW": not compared
    accuracy: AccuracyChange | None = None
    energy: EnergyChange | None = None
    acc_p: float | None = None  # Holm-adjusted
    raw_p: float | None = None
    rel_p: float | None = None
    runs: tuple[int, int] = (0, 0)
    reference: tuple[str, ...] = ()  # the variants its relative reference was built from
    regressions: tuple[str, ...] = ()
    withheld: str | None = None  # a relative rise not attributed to it, and why
    drift: str | None = None  # a relative rise kept although the reference fell, and why
    no_relative: str | None = None  # why no relative test ran for it
    work: WorkChange | None = None  # instructions per inference, where both sides counted them
    work_note: str | None = None  # why they were not compared
    energy_ungated: tuple[str, ...] = ()  # energy regressions printed but not gated (estimate; work decides)


@dataclass(frozen=True)
class Comparison:
    thresholds: Thresholds
    verdicts: list[Verdict]
    warnings: list[str] = field(default_factory=list)
    moved: frozenset[str] = frozenset()
    allowed: dict[str, str] = field(default_factory=dict)  # differences the caller allowed, in words
    need: int = 0  # runs per side the energy test needs to reach alpha after Holm
    work_decides: bool = False  # energy is an estimate and instructions were counted: they gate instead

    @property
    def regressions(self) -> int:
        return sum(bool(v.regressions) for v in self.verdicts)

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0


def decide(base_dirs: list[Path], new_dirs: list[Path], th: Thresholds = Thresholds(),
           allow: frozenset[str] = frozenset()) -> Comparison:
    """The verdicts; a one-line UserError where BASE and NEW cannot be compared."""
    for side, dirs in (("BASE", base_dirs), ("NEW", new_dirs)):
        if isinstance(dirs, (str, Path)) or not dirs:  # an unset variable in a gate must not pass as "0 regressions"
            raise UserError(f"compare: {side} names no run directory ({dirs!r}); pass a list of run folders "
                            "(DIR or DIR1,DIR2,... on the command line)")
    if not isinstance(th, Thresholds):
        raise UserError(f"compare thresholds are a harness.compare.Thresholds, not {type(th).__name__}")
    base, new = _load([Path(d) for d in base_dirs]), _load([Path(d) for d in new_dirs])
    for what in ("suite", "task"):
        sa, sb = {getattr(r, what) for r in base.records}, {getattr(r, what) for r in new.records}
        if sa != sb:
            raise UserError(f"cannot compare {what} {', '.join(sorted(sa))} with {', '.join(sorted(sb))}; "
                            f"compare runs of the same {what}")
    devices = [{f"{r.device.get('type', 'cpu')} {r.device.get('model') or ''}".strip() for r in side.ok()}
               for side in (base, new)]
    if devices[0] != devices[1]:
        raise UserError(f"BASE ran on {', '.join(sorted(devices[0]))} and NEW on {', '.join(sorted(devices[1]))}; "
                        "energy per inference is not comparable across devices: compare runs on the same device")
    differences = _differences(base, new)
    refused = {k: v for k, v in differences.items() if k not in allow}
    if refused:
        k, text = next(iter(refused.items()))
        raise UserError(f"{text}; J/inference is not comparable so: compare runs measured alike, or pass "
                        f"--allow {k} to compare anyway (the output then says so)")
    b_var, n_var = base.by_variant, new.by_variant
    shared = sorted(set(b_var) & set(n_var))
    mb, mn = _run_medians(b_var), _run_medians(n_var)
    moved = frozenset() if th.windows_as_units else movers(mb, mn, shared, th)
    rel = Relative(mb, mn, shared, exclude=moved)
    energy = {vid: _energy(vid, b_var, n_var, mb, mn, rel, th) for vid in shared}
    accuracy = {vid: _accuracy(_one_per_seed(b_var[vid]), _one_per_seed(n_var[vid])) for vid in shared}
    acc_p = _holm({v: a.p for v, a in accuracy.items()})
    raw_p = _holm({v: e.p for v, e in energy.items()})
    rel_p = _holm({v: e.rel_p for v, e in energy.items()})
    packages = _packages_changed(base, new)
    changed = {vid: _evidence(vid, base, new) for vid in shared}
    works = {vid: _work(vid, base, new) for vid in shared}
    # an estimate is CPU time x constants and drifts with the machine: where the work
    # was counted, the deterministic count is what the exit code rests on
    work_decides = _estimate_only(base, new) and any(w for w, _ in works.values())
    verdicts = []
    for vid in sorted(set(b_var) | set(n_var)):
        if vid not in shared:
            verdicts.append(Verdict(vid, only_in="NEW" if vid in n_var else "BASE"))
            continue
        a, e = accuracy[vid], energy[vid]
        found: list[str] = []
        withheld = drift = no_relative = None
        if a.delta < -th.acc_drop and (acc_p[vid] < th.alpha if vid in acc_p else a.separated):
            found.append(f"ACCURACY REGRESSION ({a.method.split(' (')[0]})")
        if vid in raw_p and e.change > th.energy_rise and raw_p[vid] < th.alpha:
            found.append("ENERGY REGRESSION")
        reference = tuple(rel.reference(vid))
        if not th.windows_as_units and not reference:
            no_relative = (f"{vid}: no relative test: no unmoved variant is left to build its reference from "
                           f"({len(shared)} variant(s), {len(moved)} moved on their own)")
        if vid in rel_p and e.rel_change is not None and e.rel_change > th.energy_rise and rel_p[vid] < th.alpha:
            if e.ref_fell_p is not None and e.ref_fell_p < th.alpha:
                missing = [u for u in reference if changed[u]]
                if packages or missing:
                    why = (f"versions differ: {', '.join(packages)}" if packages else
                           f"changed in NEW (artifact key or run config): {', '.join(missing)}")
                    withheld = (f"{vid}: {e.rel_change:+.1%} against the others, but the others' reference itself "
                                f"fell {e.ref_change:+.1%} (U p {e.ref_fell_p:.3g}) and nothing shows that was the "
                                f"machine ({why}), so the relative rise is not attributed to it")
                else:
                    drift = (f"{vid}: the others' reference fell {e.ref_change:+.1%} (U p {e.ref_fell_p:.3g}), but "
                             "every variant in it ran the same models and config under the same packages and measuring code on "
                             "both sides: the fall is the machine's drift, and the relative rise stands")
            if withheld is None:
                found.append("ENERGY REGRESSION (relative to the other variants)")
        w, work_note = works[vid]
        ungated: tuple[str, ...] = ()
        if work_decides:
            ungated = tuple(f for f in found if f.startswith("ENERGY"))
            found = [f for f in found if not f.startswith("ENERGY")]
        if w is not None and w.change > th.work_rise:
            found.append("WORK REGRESSION (instructions per inference)")
        verdicts.append(Verdict(vid, None, a, e, acc_p.get(vid), raw_p.get(vid), rel_p.get(vid),
                                (len(b_var[vid]), len(n_var[vid])), reference, tuple(found), withheld, drift,
                                no_relative, w, work_note, ungated))
    allowed = {k: v for k, v in differences.items() if k in allow}
    return Comparison(th, verdicts, base.warnings + new.warnings, moved, allowed,
                      min_runs_per_side(th.alpha, len(shared)), work_decides)


# -- the one formatter ------------------------------------------------------------------
def _fmt(p: float | None) -> str:
    return "-" if p is None else f"{p:.3g}"


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1%}"


def render(c: Comparison) -> list[str]:
    th = c.thresholds
    lines = [f"warning: {w}" for w in c.warnings]
    lines += [f"warning: compared although {text} (allowed: --allow {k}); read the verdicts with that in mind"
              for k, text in c.allowed.items()]
    unit = "windows" if th.windows_as_units else "runs"
    lines.append(f"{'variant':22s} {'acc base':>8s} {'acc new':>8s} {'delta':>8s} {'p(Holm)':>8s}  "
                 f"{'J/inf base':>10s} {'J/inf new':>10s} {'change':>8s} {'p(U)':>8s} {'rel chg':>8s} {'p(U)':>8s} "
                 f"{'runs':>5s}  verdict")
    compared = [v for v in c.verdicts if v.only_in is None]
    for v in c.verdicts:
        if v.only_in:
            lines.append(f"{v.variant:22s} only in {v.only_in}; not compared")
            continue
        a, e = v.accuracy, v.energy
        assert a is not None and e is not None
        lines.append(f"{v.variant:22s} {a.base:8.4f} {a.new:8.4f} {a.delta:+8.4f} {_fmt(v.acc_p):>8s}  "
                     f"{e.base:10.3e} {e.new:10.3e} {e.change:+8.1%} {_fmt(v.raw_p):>8s} "
                     f"{_pct(e.rel_change):>8s} {_fmt(v.rel_p):>8s} {f'{v.runs[0]}/{v.runs[1]}':>5s}  "
                     f"{'; '.join(v.regressions) or 'ok'}")
    methods = sorted({v.accuracy.method for v in compared if v.accuracy})
    lines.append(f"\n{c.regressions} regression(s); thresholds: accuracy drop > {th.acc_drop:g} and energy rise > "
                 f"{th.energy_rise:.0%}, each significant at alpha {th.alpha:g} after Holm across variants. "
                 f"Accuracy: {'; '.join(methods)}. Energy: one-sided U tests over {unit}, raw and relative to a "
                 "leave-one-out median of the other variants' drift in the same run")
    if c.moved:
        lines.append(f"moved on their own, so left out of the other variants' reference: {', '.join(sorted(c.moved))}")
    lines += [f"withheld: {v.withheld}" for v in compared if v.withheld]
    lines += [f"drift: {v.drift}" for v in compared if v.drift]
    lines += [f"note: {v.no_relative}" for v in compared if v.no_relative]
    counted = [v for v in compared if v.work is not None]
    if counted:
        lines.append(f"\n{'variant':22s} {'instr/inf base':>14s} {'instr/inf new':>14s} {'change':>8s} "
                     f"{'in-side spread':>14s}  verdict")
        for v in counted:
            w = v.work
            assert w is not None
            verdict = "WORK REGRESSION" if any(f.startswith("WORK") for f in v.regressions) else "ok"
            lines.append(f"{v.variant:22s} {w.base:14.6g} {w.new:14.6g} {w.change:+8.2%} "
                         f"{'-' if w.spread is None else f'{w.spread:.2%}':>14s}  {verdict}")
        uncounted = [v.variant for v in compared if v.work is None and not v.work_note]
        if uncounted:
            lines.append(f"instructions not counted (on either side) for: {', '.join(uncounted)}")
        spreads = [v.work.spread for v in counted if v.work and v.work.spread is not None]
        lines.append(f"instructions per inference ({counted[0].work.tool}, one thread): a deterministic count of "
                     f"work, not energy; a rise > {th.work_rise:.0%} is a regression with one run per side. "
                     + (f"Measured spread within a side here: at most {max(spreads):.2%}. " if spreads else "")
                     + f"A/A spread between processes: {work.AA_SPREAD} (benchmarks/scripts/work_check.py)")
    if c.work_decides:
        ungated = [v for v in compared if v.energy_ungated]
        lines.append("energy is an estimate on both sides (CPU time x constants, which drifts with the machine): "
                     "the exit code rests on accuracy and instructions per inference; J/inference changes are "
                     "printed, not gated" + (f" (energy regressions not gated: {', '.join(v.variant for v in ungated)})"
                                             if ungated else ""))
    lines += [f"note: {v.work_note}" for v in compared if v.work_note]
    if any(v.accuracy and v.accuracy.p is None for v in compared):
        lines.append("accuracy without paired examples (different seeds or eval labels): a regression needs "
                     "non-overlapping 95% intervals; no p-value is printed because no test was run")
    tested = [v for v in compared if v.raw_p is not None]
    if c.work_decides:
        pass  # energy does not gate here: how many runs it would take is beside the point
    elif len(tested) < len(compared):
        lines.append(f"energy not gated for {len(compared) - len(tested)} variant(s): one run per side cannot "
                     f"separate a change from run-to-run drift; repeat base and new interleaved "
                     f"(base, new, new, base, ...), >= {c.need} runs per side for {len(compared)} variants")
    elif not th.windows_as_units and any(min(v.runs) < c.need for v in compared):
        lines.append(f"note: fewer than {c.need} runs per side; the U test cannot reach alpha after Holm's "
                     f"adjustment, so energy cannot fail this comparison")
    return lines


def compare(base_dirs: list[Path], new_dirs: list[Path], th: Thresholds = Thresholds(),
            allow: frozenset[str] = frozenset()) -> tuple[list[str], int]:
    """(report lines, exit code): ``render(decide(...))``."""
    c = decide(base_dirs, new_dirs, th, allow)
    return render(c), c.exit_code
