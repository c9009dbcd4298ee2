"""``joulebench history show``: each series' latest value, its change against the
rolling baseline, and its change points, as text. Exit 1 when the latest night of any
shown series starts a regression step, so a nightly job can gate on it."""

from __future__ import annotations

import math

import pandas as pd

from harness.history.series import METRICS, Series
from harness.history.steps import MIN_NIGHTS, Rule, Step, Verdict


def fmt_value(metric: str, value: float) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if metric == "instructions_per_inference":
        return f"{value:.6g}"
    return f"{value:.4f}" if metric == "accuracy" else f"{value:.3g}"


def fmt_change(metric: str, change: float) -> str:
    if change is None or not math.isfinite(change):
        return "-"
    return f"{100 * change:+.1f}%" if METRICS[metric].relative else f"{change:+.4f}"


def night(series: Series, index: int) -> str:
    row = series.nights.iloc[index]
    commit = (row["git_commit"] or "?")[:7] + ("+dirty" if row["git_dirty"] == 1 else "")
    when = str(row["started_at"])  # ISO: date and time (several runs may share a day)
    return f"{when[:10]} {when[11:16]} {commit}".replace("  ", " ")


def fmt_step(series: Series, metric: str, step: Step) -> str:
    word = "worse" if step.regression else "better"
    new = ", new: the next night confirms or withdraws it" if step.new else ""
    return f"{night(series, step.index)} {fmt_change(metric, step.change)} {word}{new}"


def spread_text(metric: str, verdict: Verdict) -> str:
    if not math.isfinite(verdict.sigma):
        return "-"
    if METRICS[metric].relative:
        level = verdict.baseline if math.isfinite(verdict.baseline) else float("nan")
        return f"{100 * verdict.sigma / abs(level):.1f}%" if level else "-"
    return f"{verdict.sigma:.4f}"


def render(series: list[Series], rules: dict[str, Rule], db: str, n_runs: int) -> tuple[list[str], int]:
    """(lines, exit code)."""
    machines = sorted({s.machine_label for s in series})
    meters = sorted({s.meter for s in series})
    rule_text = ", ".join(f"{METRICS[m].label} {fmt_change(m, r.worse * r.min_effect)}" for m, r in rules.items())
    first = next(iter(rules.values()))
    lines = [f"{db}: {n_runs} runs, {len(series)} series on {len(machines)} machine(s), meter(s): {', '.join(meters)}",
             f"a step must exceed the minimum effect ({rule_text}) and {first.spread_factor:g}x the series' "
             f"run-to-run spread (more with few nights, as Student's t); baseline: median of up to {first.window} "
             "nights before the latest"]
    regressions = []
    groups: dict[tuple, list[Series]] = {}
    for s in series:
        groups.setdefault((s.suite, s.profile, s.machine_label, s.meter), []).append(s)
    header = f"  {'variant':22s} {'metric':14s} {'nights':>6s}  {'latest':>10s}  {'night':18s} {'baseline':>10s} " \
             f"{'change':>8s} {'spread':>7s}  steps"
    for (suite, profile, label, meter), members in groups.items():
        unc = members[0].nights["energy_uncertainty"].iloc[-1]
        unc_text = f" (stated +-{100 * unc:.2g}%)" if pd.notna(unc) else ""
        lines += ["", f"{suite} ({profile}) on {label}, energy: {meter}{unc_text}", header]
        other = max(s.other_code for s in members)
        if other:
            lines.insert(-1, f"  {other} earlier night(s) ran other measuring code than the latest night: their "
                             "energy and work are left out of the series (compare withholds the same pair)")
        for s in members:
            for i, (metric, verdict) in enumerate(s.verdicts.items()):
                latest = s.nights[METRICS[metric].column].iloc[-1]
                if verdict.too_few:
                    steps = f"too few nights to judge (needs {MIN_NIGHTS})"
                else:
                    shown = [fmt_step(s, metric, st) for st in verdict.steps]
                    if verdict.new is not None:
                        shown.append(fmt_step(s, metric, verdict.new))
                    steps = "; ".join(shown) or "none"
                lines.append(f"  {s.variant_id if i == 0 else '':22s} {METRICS[metric].label:14s} {len(s.nights):6d}  "
                             f"{fmt_value(metric, latest):>10s}  {night(s, -1):18s} "
                             f"{fmt_value(metric, verdict.baseline):>10s} {fmt_change(metric, verdict.latest_change):>8s} "
                             f"{spread_text(metric, verdict):>7s}  {steps}")
                if verdict.latest_regression:
                    regressions.append(f"REGRESSION: {s.title} {METRICS[metric].label} on {label} ({meter}): the "
                                       f"latest night ({night(s, -1)}) is {fmt_change(metric, verdict.new.change)} "
                                       f"against its baseline {fmt_value(metric, verdict.baseline)}")
                elif verdict.confirmed is not None:
                    step = verdict.confirmed
                    regressions.append(f"REGRESSION: {s.title} {METRICS[metric].label} on {label} ({meter}): the "
                                       f"latest night ({night(s, -1)}) confirms a step of "
                                       f"{fmt_change(metric, step.change)} that began {night(s, step.index)} "
                                       f"({fmt_value(metric, step.before)} -> {fmt_value(metric, step.after)})")
    lines.append("")
    lines += regressions or ["no series' latest night starts or confirms a regression step"]
    return lines, 1 if regressions else 0
