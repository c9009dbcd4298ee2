"""``joulebench compare BASE NEW``: did a change make any variant less accurate or more
energy-hungry? Exit 1 on a regression beyond the thresholds, 0 otherwise.

Per variant present in both:
- accuracy: paired McNemar on the same eval examples when both runs have them (same
  labels, same seeds); otherwise non-overlapping Wilson 95% intervals. A regression is
  a drop larger than ``acc_drop`` that is significant at ``alpha``.
- energy: one-sided Mann-Whitney U over the raw per-window J per inference (NEW greater
  than BASE), and a minimum effect size: the median must rise by more than
  ``energy_rise`` (default 5%). Both must hold, so noise alone does not fail a build.
"""

from __future__ import annotations

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


def _by_variant(recs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for r in recs:
        if r.get("status", "ok") == "ok":
            out.setdefault(r["variant_id"], []).append(r)
    return out


def _per_window(group: list[dict[str, Any]]) -> list[float]:
    return [w["energy_j"] / r["inference"]["inferences_per_window"] for r in group for w in r["inference"]["windows"]]


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


def compare(base_dirs: list[Path], new_dirs: list[Path], th: Thresholds = Thresholds()) -> tuple[list[str], int]:
    """(report lines, exit code)."""
    base, w1 = load_run_dirs(base_dirs)
    new, w2 = load_run_dirs(new_dirs)
    for a, b, what in ((base, new, "suite"), (base, new, "task")):
        sa, sb = {r[what] for r in a}, {r[what] for r in b}
        if sa != sb:
            raise UserError(f"cannot compare {what} {', '.join(sorted(sa))} with {', '.join(sorted(sb))}; "
                            f"compare runs of the same {what}")
    lines = [f"warning: {w}" for w in w1 + w2]
    lines.append(f"{'variant':22s} {'acc base':>8s} {'acc new':>8s} {'delta':>8s} {'p':>8s}  "
                 f"{'J/inf base':>10s} {'J/inf new':>10s} {'change':>8s} {'p(U)':>8s}  verdict")
    b_var, n_var = _by_variant(base), _by_variant(new)
    regressions = 0
    for vid in sorted(set(b_var) | set(n_var)):
        if vid not in b_var or vid not in n_var:
            lines.append(f"{vid:22s} only in {'NEW' if vid in n_var else 'BASE'}; not compared")
            continue
        b, n = b_var[vid], n_var[vid]
        delta, p_acc, how = _accuracy_test(b, n)
        jb, jn = _per_window(b), _per_window(n)
        change = stats.median(jn) / stats.median(jb) - 1
        p_u = mannwhitneyu(jn, jb, alternative="greater").pvalue
        verdicts = []
        if delta < -th.acc_drop and p_acc < th.alpha:
            verdicts.append(f"ACCURACY REGRESSION ({how})")
        if change > th.energy_rise and p_u < th.alpha:
            verdicts.append("ENERGY REGRESSION")
        regressions += bool(verdicts)
        lines.append(f"{vid:22s} {sum(r['eval']['correct'] for r in b) / sum(r['eval']['n'] for r in b):8.4f} "
                     f"{sum(r['eval']['correct'] for r in n) / sum(r['eval']['n'] for r in n):8.4f} "
                     f"{delta:+8.4f} {p_acc:8.3g}  {stats.median(jb):10.3e} {stats.median(jn):10.3e} "
                     f"{change:+8.1%} {p_u:8.3g}  {'; '.join(verdicts) or 'ok'}")
    lines.append(f"\n{regressions} regression(s); thresholds: accuracy drop > {th.acc_drop:g} and energy rise > "
                 f"{th.energy_rise:.0%}, each significant at alpha {th.alpha:g}")
    return lines, 1 if regressions else 0
