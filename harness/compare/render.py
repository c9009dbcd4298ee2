"""The one formatter of a comparison, and ``compare``: decide, then print."""

from __future__ import annotations

from pathlib import Path

from harness import work
from harness.compare.decide import Comparison, decide
from harness.compare.sides import Thresholds


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
