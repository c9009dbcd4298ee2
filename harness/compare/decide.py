"""The verdicts: every variant's tests, the reference used, what was withheld and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.compare import changes, sides
from harness.compare.changes import AccuracyChange, EnergyChange, Relative, WorkChange
from harness.compare.sides import Thresholds
from harness.errors import UserError


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
    base, new = sides.load([Path(d) for d in base_dirs]), sides.load([Path(d) for d in new_dirs])
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
    differences = sides.differences(base, new)
    refused = {k: v for k, v in differences.items() if k not in allow}
    if refused:
        k, text = next(iter(refused.items()))
        raise UserError(f"{text}; J/inference is not comparable so: compare runs measured alike, or pass "
                        f"--allow {k} to compare anyway (the output then says so)")
    b_var, n_var = base.by_variant, new.by_variant
    shared = sorted(set(b_var) & set(n_var))
    mb, mn = changes.run_medians(b_var), changes.run_medians(n_var)
    moved = frozenset() if th.windows_as_units else changes.movers(mb, mn, shared, th)
    rel = Relative(mb, mn, shared, exclude=moved)
    energy = {vid: changes.energy_change(vid, b_var, n_var, mb, mn, rel, th) for vid in shared}
    accuracy = {vid: changes.accuracy_change(sides.one_per_seed(b_var[vid]), sides.one_per_seed(n_var[vid])) for vid in shared}
    acc_p = changes.holm({v: a.p for v, a in accuracy.items()})
    raw_p = changes.holm({v: e.p for v, e in energy.items()})
    rel_p = changes.holm({v: e.rel_p for v, e in energy.items()})
    packages = sides.packages_changed(base, new)
    changed = {vid: sides.evidence(vid, base, new) for vid in shared}
    works = {vid: changes.work_change(vid, base, new) for vid in shared}
    # an estimate is CPU time x constants and drifts with the machine: where the work
    # was counted, the deterministic count is what the exit code rests on
    work_decides = changes.estimate_only(base, new) and any(w for w, _ in works.values())
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
                      changes.min_runs_per_side(th.alpha, len(shared)), work_decides)
