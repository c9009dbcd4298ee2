"""``joulebench compare BASE NEW``: did a change make any variant less accurate or more
energy-hungry? Exit 1 on a regression beyond the thresholds, 0 otherwise.

BASE and NEW are each one run dir or several (comma-separated): repeated runs of the
same suite. Per variant present on both sides:
- accuracy: paired McNemar on the same eval examples when both sides have them (same
  labels, same seeds); otherwise non-overlapping Wilson 95% intervals. A regression is
  a drop larger than ``acc_drop`` that is significant at ``alpha``.
- energy: the unit is the *run*, not the window. Windows of one run share that run's
  machine state; on this VM a second run of identical code moved J/inference by -20%
  to +56% while every window-level test called it significant (pseudo-replication).
  Each run contributes its median J/inference per variant, and two tests run over
  those run medians, each a one-sided Mann-Whitney U, Holm-adjusted across variants:
  * raw: did J/inference rise? Catches a change that makes every variant costlier,
    but only beyond the machine's run-to-run drift (about 15% run CV on this VM).
  * relative: did J/inference rise relative to the geometric mean of the other
    variants measured in the same run? The variants of a run are measured in
    interleaved rounds (measure.py), so the machine's drift is mostly common to them
    and cancels: here the run-to-run spread falls from ~15% to ~5%. Blind to a change
    that hits every variant equally; that is what the raw test is for.
  A regression needs significance at ``alpha`` and a median rise above
  ``energy_rise``. With too few runs to reach significance the changes are printed,
  not gated, and the output says how many runs it takes. ``windows_as_units``
  replaces both by the window-level raw test, for machines whose own A/A shows
  run-to-run drift below the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scipy.stats import mannwhitneyu

from harness import stats
from harness.errors import UserError
from harness.table import load_run_dirs


@dataclass(frozen=True)
class Thresholds:
    acc_drop: float = 0.01  # fraction (1 point)
    energy_rise: float = 0.05  # relative
    alpha: float = 0.05
    windows_as_units: bool = False


Runs = dict[str, dict[int, list[dict[str, Any]]]]  # variant -> run dir index -> its records


def _load(dirs: list[Path]) -> tuple[Runs, list[dict[str, Any]], list[str]]:
    runs: Runs = {}
    every: list[dict[str, Any]] = []
    warnings: list[str] = []
    for i, d in enumerate(dirs):
        recs, warn = load_run_dirs([d])
        warnings += warn
        every += recs
        mine: dict[str, list[dict[str, Any]]] = {}
        for r in recs:
            if r.get("status", "ok") == "ok":
                mine.setdefault(r["variant_id"], []).append(r)
        for vid, group in mine.items():
            runs.setdefault(vid, {})[i] = group
    return runs, every, warnings


def _per_window(group: list[dict[str, Any]]) -> list[float]:
    return [w["energy_j"] / r["inference"]["inferences_per_window"] for r in group for w in r["inference"]["windows"]]


def _one_per_seed(runs: dict[int, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Repeated runs re-measure the same trained models: count each seed's eval once."""
    seen: dict[int, dict[str, Any]] = {}
    for group in runs.values():
        for r in group:
            seen.setdefault(r["seed"], r)
    return list(seen.values())


def _accuracy_test(base: list[dict[str, Any]], new: list[dict[str, Any]]) -> tuple[float, float, str]:
    """(delta, p, method)."""
    b_seed = {r["seed"]: r for r in base}
    pairs_b, pairs_n = [], []
    for r in new:
        o = b_seed.get(r["seed"])
        if o and o["eval"].get("labels") and o["eval"]["labels"] == r["eval"].get("labels"):
            pairs_b += [p == y for p, y in zip(o["eval"]["predictions"], o["eval"]["labels"])]
            pairs_n += [p == y for p, y in zip(r["eval"]["predictions"], r["eval"]["labels"])]
    if pairs_n:
        _, _, p = stats.mcnemar(pairs_b, pairs_n)
        return (sum(pairs_n) - sum(pairs_b)) / len(pairs_n), p, "McNemar"
    kb, nb = sum(r["eval"]["correct"] for r in base), sum(r["eval"]["n"] for r in base)
    kn, nn = sum(r["eval"]["correct"] for r in new), sum(r["eval"]["n"] for r in new)
    lo_b, hi_b = stats.wilson(kb, nb)
    lo_n, hi_n = stats.wilson(kn, nn)
    separate = hi_n < lo_b or hi_b < lo_n
    return kn / nn - kb / nb, 0.0 if separate else 1.0, "CI overlap"


def min_runs_per_side(alpha: float, tests: int) -> int:
    """Fewest runs per side at which a one-sided U test can reach alpha / tests (Holm's
    strictest step): its smallest p-value is 1 / C(2k, k)."""
    k = 1
    while 1 / math.comb(2 * k, k) >= alpha / max(tests, 1):
        k += 1
    return k


Medians = dict[str, dict[int, float]]  # variant -> run dir index -> median J/inference


def _run_medians(runs: Runs) -> Medians:
    """Each run's median J/inference per variant, once: both tests read these."""
    return {vid: {k: stats.median(_per_window(g)) for k, g in by_run.items()}
            for vid, by_run in runs.items()}


def _relative(medians: Medians, vid: str, others: list[str]) -> list[float]:
    """Per run: log J/inference of ``vid`` minus the mean log J/inference of the other
    variants in that same run."""
    out = []
    for k, own in medians.get(vid, {}).items():
        peers = [math.log(medians[u][k]) for u in others if k in medians.get(u, {})]
        if peers:
            out.append(math.log(own) - sum(peers) / len(peers))
    return out


@dataclass(frozen=True)
class EnergyChange:
    base: float  # median over runs of the run medians, J/inference
    new: float
    change: float  # relative, raw
    p: float | None  # one-sided U p-value before Holm; None when untestable
    rel_change: float | None = None  # relative to the other variants of the same run
    rel_p: float | None = None


def _u(new: list[float], base: list[float]) -> float | None:
    if len(new) < 2 or len(base) < 2:
        return None
    return float(mannwhitneyu(new, base, alternative="greater", method="exact").pvalue)


def _energy(vid: str, b: Runs, n: Runs, mb_all: Medians, mn_all: Medians, shared: list[str],
            th: Thresholds) -> EnergyChange:
    if th.windows_as_units:
        jb = _per_window([r for g in b[vid].values() for r in g])
        jn = _per_window([r for g in n[vid].values() for r in g])
        return EnergyChange(stats.median(jb), stats.median(jn), stats.median(jn) / stats.median(jb) - 1,
                            float(mannwhitneyu(jn, jb, alternative="greater").pvalue))
    mb, mn = list(mb_all[vid].values()), list(mn_all[vid].values())
    base, new = stats.median(mb), stats.median(mn)
    others = [u for u in shared if u != vid]
    rb, rn = _relative(mb_all, vid, others), _relative(mn_all, vid, others)
    rel = math.exp(stats.median(rn) - stats.median(rb)) - 1 if rb and rn else None
    return EnergyChange(base, new, new / base - 1, _u(mn, mb), rel, _u(rn, rb))


def _holm(pvalues: dict[str, float | None]) -> dict[str, float]:
    tested = [v for v, p in pvalues.items() if p is not None]
    return dict(zip(tested, stats.holm([pvalues[v] for v in tested])))  # type: ignore[misc]


def _fmt(p: float | None) -> str:
    return "-" if p is None else f"{p:.3g}"


def compare(base_dirs: list[Path], new_dirs: list[Path], th: Thresholds = Thresholds()) -> tuple[list[str], int]:
    """(report lines, exit code)."""
    b_var, base, w1 = _load(base_dirs)
    n_var, new, w2 = _load(new_dirs)
    for what in ("suite", "task"):
        sa, sb = {r[what] for r in base}, {r[what] for r in new}
        if sa != sb:
            raise UserError(f"cannot compare {what} {', '.join(sorted(sa))} with {', '.join(sorted(sb))}; "
                            f"compare runs of the same {what}")
    lines = [f"warning: {w}" for w in w1 + w2]
    unit = "windows" if th.windows_as_units else "runs"
    lines.append(f"{'variant':22s} {'acc base':>8s} {'acc new':>8s} {'delta':>8s} {'p':>8s}  "
                 f"{'J/inf base':>10s} {'J/inf new':>10s} {'change':>8s} {'p(U)':>8s} {'rel chg':>8s} {'p(U)':>8s} "
                 f"{'runs':>5s}  verdict")
    shared = sorted(set(b_var) & set(n_var))
    mb, mn = _run_medians(b_var), _run_medians(n_var)
    energy = {vid: _energy(vid, b_var, n_var, mb, mn, shared, th) for vid in shared}
    raw_p = _holm({v: e.p for v, e in energy.items()})
    rel_p = _holm({v: e.rel_p for v, e in energy.items()})
    regressions = 0
    for vid in sorted(set(b_var) | set(n_var)):
        if vid not in shared:
            lines.append(f"{vid:22s} only in {'NEW' if vid in n_var else 'BASE'}; not compared")
            continue
        b, n = _one_per_seed(b_var[vid]), _one_per_seed(n_var[vid])
        delta, p_acc, how = _accuracy_test(b, n)
        e = energy[vid]
        verdicts = []
        if delta < -th.acc_drop and p_acc < th.alpha:
            verdicts.append(f"ACCURACY REGRESSION ({how})")
        if vid in raw_p and e.change > th.energy_rise and raw_p[vid] < th.alpha:
            verdicts.append("ENERGY REGRESSION")
        if vid in rel_p and e.rel_change is not None and e.rel_change > th.energy_rise and rel_p[vid] < th.alpha:
            verdicts.append("ENERGY REGRESSION (relative to the other variants)")
        regressions += bool(verdicts)
        acc_b = sum(r["eval"]["correct"] for r in b) / sum(r["eval"]["n"] for r in b)
        acc_n = sum(r["eval"]["correct"] for r in n) / sum(r["eval"]["n"] for r in n)
        k = f"{len(b_var[vid])}/{len(n_var[vid])}"
        rel = "-" if e.rel_change is None else f"{e.rel_change:+.1%}"
        lines.append(f"{vid:22s} {acc_b:8.4f} {acc_n:8.4f} {delta:+8.4f} {p_acc:8.3g}  {e.base:10.3e} {e.new:10.3e} "
                     f"{e.change:+8.1%} {_fmt(raw_p.get(vid)):>8s} {rel:>8s} {_fmt(rel_p.get(vid)):>8s} {k:>5s}  "
                     f"{'; '.join(verdicts) or 'ok'}")
    tested = list(raw_p)
    need = min_runs_per_side(th.alpha, len(shared))
    lines.append(f"\n{regressions} regression(s); thresholds: accuracy drop > {th.acc_drop:g} and energy rise > "
                 f"{th.energy_rise:.0%}, each significant at alpha {th.alpha:g} (energy: one-sided U tests over {unit}, "
                 f"raw and relative, each Holm-adjusted across {len(tested)} variant(s))")
    if len(tested) < len(shared):
        lines.append(f"energy not gated for {len(shared) - len(tested)} variant(s): one run per side cannot "
                     f"separate a change from run-to-run drift; repeat base and new interleaved "
                     f"(base, new, base, new, ...), >= {need} runs per side for {len(shared)} variants")
    elif not th.windows_as_units and any(min(len(b_var[v]), len(n_var[v])) < need for v in shared):
        lines.append(f"note: fewer than {need} runs per side; the U test cannot reach alpha after Holm's "
                     f"adjustment, so energy cannot fail this comparison")
    return lines, 1 if regressions else 0
