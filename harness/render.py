"""The table as people read it: markdown and LaTeX (booktabs), in two parts.

Part 1 answers "which variant buys the most accuracy per joule"; part 2 answers "what
did it cost to make, and when does that pay back". Every header carries its unit; the
footnotes give the energy method, its formula, the carbon constants and any warning.
"""

from __future__ import annotations

import math
from contextvars import ContextVar
from typing import Any, Callable

import numpy as np
import pandas as pd

from harness import columns, decisions, stats
from harness.table import CV_WARN

Cell = Callable[[pd.Series], str]


def fmt_target(row: Any) -> str:
    """The curve's target as the markdown shows it: ``0.9`` or ``99% of final``."""
    if pd.notna(row["target_accuracy"]):
        return f"{row['target_accuracy']:g}"
    return f"{row['target_share_of_final']:.0%} of final"


#: How fmt writes a float while a column renders (``_rows``): the magnitude classes
#: ("big": |v| >= 1, "small": |v| < 0.01) written in scientific notation throughout, and
#: the (class, scientific?) choices noted, so that a column whose values of one class
#: would mix 4417 and 8.34e+04 (or 0.000163 and 6.81e-06) is written in one notation.
_STYLE: ContextVar[tuple[frozenset, list]] = ContextVar("fmt_style", default=(frozenset(), []))


def _magnitude(value: float) -> str | None:
    return "big" if abs(value) >= 1 else "small" if 0 < abs(value) < 1e-2 else None


def fmt(value: Any) -> str:
    if value is None or value is pd.NA:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if math.isinf(value):
            return "inf"
        sci_classes, seen = _STYLE.get()
        kind = _magnitude(value)
        if kind in sci_classes:
            return f"{value:.3e}"
        text = f"{value:.3g}" if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5) else f"{value:.4g}"
        if kind is not None:
            seen.append((kind, "e" in text))
        return text
    return str(value)


def ci(value: float, lo: float, hi: float) -> str:
    return f"{fmt(value)} [{fmt(lo)}, {fmt(hi)}]"


def _pm(value: float, std: float) -> str:
    return fmt(value) if pd.isna(std) else f"{fmt(value)} ± {fmt(std)}"


def _delta(r: pd.Series) -> str:
    if pd.isna(r["accuracy_delta_vs_parent"]):
        return "-"
    return f"{r['accuracy_delta_vs_parent']:+.4f} ({stats.p_text(r['delta_p'], r['delta_test'])})"


def _j_ci(r: pd.Series, col: str) -> str:
    """One run: the median over its windows and the interval within it. Several runs:
    the median of the run medians, labelled with the run count, and its interval across
    runs where there is one (gross, 6 runs or more)."""
    runs = r.get("J_per_inference_runs", 1)
    bound = mark(r, col)
    if pd.isna(runs) or runs <= 1:
        return bound + ci(r[col], r[f"{col}_within_run_ci95_lo"], r[f"{col}_within_run_ci95_hi"])
    lo, hi = r.get(f"{col}_across_runs_ci95_lo", float("nan")), r.get(f"{col}_across_runs_ci95_hi", float("nan"))
    span = "no interval" if pd.isna(lo) else f"[{fmt(lo)}, {fmt(hi)}]"
    return f"{bound}{fmt(r[col])} {span} (median of {int(runs)} runs)"


def _sparsity(r: pd.Series) -> str:
    if r["sparsity"] is None or pd.isna(r["sparsity"]):
        return "-"
    used = r.get("sparsity_exploited")
    return f"{r['sparsity']:.1%} ({'-' if used is None or pd.isna(used) else 'yes' if used else 'no'})"


def unc_text(fraction: Any) -> str:
    """A stated uncertainty for people: 0.5 -> ``±50%``."""
    return "-" if fraction is None or pd.isna(fraction) else f"±{100 * float(fraction):.2g}%"


def break_even_text(r: pd.Series, interval: bool = True) -> str:
    """The break-even as every output prints it: ``1.2e+04 [8.1e+03, 2.0e+04]`` (an upper
    bound marked), ``no saving``, ``unknown`` (creation made outside joulebench), ``-``."""
    status = r.get("break_even_status")
    if status is None or pd.isna(status) or status == decisions.NO_PARENT:
        return "-"
    if status == decisions.NO_SAVING:
        return NO_SAVING
    if status == decisions.UNKNOWN_CREATION:
        return UNKNOWN
    text = mark(r, "break_even_inferences") + fmt(r["break_even_inferences"])
    return text + (f" [{fmt(r['break_even_ci95_lo'])}, {fmt(r['break_even_ci95_hi'])}]" if interval else "")


#: A variant whose saving per inference has a 95% interval reaching 0: it never pays back on this evidence.
NO_SAVING = decisions.NO_SAVING


#: A creation figure that is not known (a variant made outside joulebench), never shown as 0.
UNKNOWN = "unknown"


def creation_text(r: pd.Series, col: str) -> str:
    """A creation-energy cell: ``unknown`` where a creation along the lineage is not known
    (the figure is null), ``(reported)`` beside the user's own figure."""
    value = r.get(col)
    if value is None or pd.isna(value):
        lineage = col != "train_J"
        if r.get("train_J_source") == "unknown" or (lineage and pd.isna(r.get("lineage_train_J"))):
            return UNKNOWN
        return "-"
    reported = str(r.get("train_J_source") or "").startswith("reported") and col in ("train_J", "lineage_train_J")
    return mark(r, col) + fmt(value) + (" (reported)" if reported else "")


def mark(r: pd.Series, col: str) -> str:
    """``≤ `` before a figure that is an upper bound (``≥ `` before one that divides by
    it, a lower bound), else nothing."""
    return ("≥ " if col in columns.LOWER_BOUNDS else "≤ ") if columns.is_bound(r, col) else ""


def _target(r: pd.Series) -> str:
    reached = r["J_to_target_seeds_reached"]
    if reached is None or pd.isna(reached):
        return "-"
    return f"{fmt(r['J_to_target'])} [{fmt_target(r)}; {int(reached)}/{int(r['seeds'])}]"


MAIN: list[tuple[str, Cell]] = [
    ("task", lambda r: r["task"]),
    ("variant", lambda r: r["variant_id"]),
    ("parent", lambda r: fmt(r["parent"])),
    ("technique (params)", lambda r: f"{r['variant']} ({r['params_desc']})"),
    ("runtime", lambda r: r["runtime"]),
    ("seeds", lambda r: fmt(r["seeds"])),
    ("device", lambda r: r["device"]),
    ("accuracy (fraction) [95% CI]", lambda r: ci(r["accuracy"], r["accuracy_ci95_lo"], r["accuracy_ci95_hi"])),
    ("accuracy mean ± std over seeds", lambda r: _pm(r["accuracy"], r["accuracy_seed_std"])),
    ("macro-F1", lambda r: fmt(r["macro_f1"])),
    ("task metric", lambda r: "-" if r["task_metric"] == "accuracy" else f"{r['task_metric']} {fmt(r['task_metric_value'])}"),
    ("Δ accuracy vs parent (p)", _delta),
    ("J/inference gross (J) [95% CI within run, or across runs]", lambda r: _j_ci(r, "J_per_inference")),
    ("J/inference net (J) [95% CI within run]", lambda r: _j_ci(r, "J_per_inference_net")),
    ("J/inference CV", lambda r: f"{r['J_per_inference_cv']:.1%}" + (" (!)" if r["J_per_inference_cv"] > CV_WARN else "")),
    ("J/inference std over seeds (J)", lambda r: fmt(r["J_per_inference_seed_std"])),
    ("inferences/s (1/s)", lambda r: fmt(r["inferences_per_s"])),
    ("correct/J (1/J)", lambda r: mark(r, "correct_per_J") + fmt(r["correct_per_J"])),
    ("Pareto (p on frontier)", lambda r: ("yes " if r["pareto"] else "") + f"({r['p_frontier']:.2f})"),
    ("verdict vs parent (p energy; p non-inferior)", lambda r: "-" if pd.isna(r["verdict"]) else
     f"{r['verdict']} ({stats.p_text(r['verdict_energy_p'], 'rank')}; "
     f"{stats.p_text(r['verdict_accuracy_p'], 'bootstrap')})"),
    ("energy method (stated unc.)", lambda r: f"{r['energy_method']} ({unc_text(r['energy_uncertainty'])})"),
]

COST: list[tuple[str, Cell]] = [
    ("task", lambda r: r["task"]),
    ("variant", lambda r: r["variant_id"]),
    ("params / nonzero (count)", lambda r: f"{fmt(r['params'])} / {fmt(r['nonzero_params'])}"),
    ("size on disk (bytes)", lambda r: fmt(r["size_bytes"])),
    ("sparsity (exploited?)", _sparsity),
    ("FLOPs/inference (FLOP)", lambda r: fmt(r["flops_per_inference"])),
    ("train FLOPs (FLOP)", lambda r: fmt(r["train_flops"])),
    ("train J gross / net (J, per seed)", lambda r: f"{creation_text(r, 'train_J')} / {fmt(r['train_J_net'])}"),
    ("train s (s, per seed)", lambda r: fmt(r["train_s"])),
    ("idle (W)", lambda r: fmt(r["idle_W"])),
    ("tuning J (J, per seed)", lambda r: fmt(r["tuning_J"])),
    ("J to target (J) [target; seeds reached]", _target),
    ("validation passes J (J)", lambda r: fmt(r["curve_eval_J"])),
    ("lineage train J (J)", lambda r: creation_text(r, "lineage_train_J")),
    ("break-even vs parent (inferences)", break_even_text),
    ("J at 1e3 queries (J)", lambda r: creation_text(r, "J_at_1e3_queries")),
    ("J at 1e6 queries (J)", lambda r: creation_text(r, "J_at_1e6_queries")),
    ("J at 1e9 queries (J)", lambda r: creation_text(r, "J_at_1e9_queries")),
    ("lineage train gCO2e (g)", lambda r: creation_text(r, "train_gCO2e")),
    ("gCO2e per 1e6 queries (g)", lambda r: mark(r, "gCO2e_per_1e6_queries") + fmt(r["gCO2e_per_1e6_queries"])),
]


def _column(rows: list[pd.Series], cell: Cell) -> list[str]:
    """One column's cells in one number format: as each value fits, or, where that mixes
    plain and scientific notation in the column, all scientific."""
    seen: list[tuple[str, bool]] = []
    token = _STYLE.set((frozenset(), seen))
    try:
        out = [str(cell(r)) for r in rows]
    finally:
        _STYLE.reset(token)
    mixed = frozenset(k for k in ("big", "small") if len({sci for kind, sci in seen if kind == k}) > 1)
    if mixed:
        token = _STYLE.set((mixed, []))
        try:
            out = [str(cell(r)) for r in rows]
        finally:
            _STYLE.reset(token)
    return out


def _rows(table: pd.DataFrame, spec: list[tuple[str, Cell]]) -> tuple[list[str], list[list[str]]]:
    rows = [r for _, r in table.iterrows()]
    cells = [_column(rows, cell) for _, cell in spec]
    return [h for h, _ in spec], [list(row) for row in zip(*cells)] if rows else []


BATCH: list[tuple[str, Cell]] = [
    ("task", lambda r: r["task"]),
    ("variant", lambda r: r["variant_id"]),
    ("device", lambda r: r["device"]),
    ("batch size", lambda r: fmt(r["batch_size"])),
    ("J/inference gross (J) [95% CI within run]",
     lambda r: ci(r["J_per_inference"], r["J_per_inference_within_run_ci95_lo"],
                  r["J_per_inference_within_run_ci95_hi"])),
    ("J/inference net (J)", lambda r: fmt(r["J_per_inference_net"])),
    ("vs table's batch size", lambda r: f"{r['ratio_to_table_batch']:.3g}x"),
    ("inferences/s (1/s)", lambda r: fmt(r["inferences_per_s"])),
    ("energy method", lambda r: r["energy_method"]),
    ("instructions/inference (work, not energy)", lambda r: fmt(r.get("instructions_per_inference"))),
]


SWEEP: list[tuple[str, Cell]] = [
    ("task", lambda r: r["task"]),
    ("model", lambda r: r["model"]),
    ("search", lambda r: f"{r['method']}, {r['configurations']} configurations, {r['trial_runs']} runs"),
    ("selected (on validation)", lambda r: f"{r['selected']} ({r['selected_params']})"),
    ("validation accuracy min / median / max (fraction)",
     lambda r: f"{fmt(r['val_accuracy_min'])} / {fmt(r['val_accuracy_median'])} / {fmt(r['val_accuracy_max'])}"),
    ("selected: validation / eval accuracy (fraction)",
     lambda r: f"{fmt(r['selected_val_accuracy'])} / {fmt(r['selected_eval_accuracy'])}"),
    ("tuning J per seed / all seeds (J)", lambda r: f"{fmt(r['tuning_J'])} / {fmt(r['tuning_J_all_seeds'])}"),
    ("final training J (J, per seed)", lambda r: fmt(r["train_J"])),
    ("tuning / final training", lambda r: f"{r['tuning_to_train_ratio']:.3g}x"),
    ("energy method", lambda r: r["energy_method"]),
]


def with_declared(spec: list[tuple[str, Cell]], section: str) -> list[tuple[str, Cell]]:
    """A markdown section's cells plus the declared columns that ask for it
    (``Column.section``), in plain formatting with their unit."""
    return spec + [(f"{c.name} ({c.unit})" if c.unit else c.name, lambda r, n=c.name: fmt(_plain(r.get(n))))
                   for c in columns.COLUMNS if c.section == section]


def markdown(table: pd.DataFrame, notes: list[str], batches: pd.DataFrame | None = None,
             sweeps: pd.DataFrame | None = None) -> str:
    parts = []
    sections = [("Accuracy per joule", with_declared(MAIN, "main"), table),
                ("Cost to create, lifecycle and carbon", with_declared(COST, "cost"), table)]
    if batches is not None and len(batches):
        sections.append(("J per inference against batch size", BATCH, batches))
    if sweeps is not None and len(sweeps):
        sections.append(("Hyperparameter sweeps: what the search cost", SWEEP, sweeps))
    for title, spec, frame in sections:
        headers, rows = _rows(frame, spec)
        lines = [f"### {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def selected_markdown(table: pd.DataFrame, names: list[str], notes: list[str]) -> str:
    """One markdown table of the columns ``names`` (``report --columns``), each header
    with its declared unit."""
    declared = columns.by_name()
    headers = [n + (f" ({declared[n].unit})" if declared[n].unit else "") for n in names]
    lines = ["### Selected columns", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    def cell(r: pd.Series, n: str) -> str:
        if n == "break_even_inferences":
            return break_even_text(r)
        return creation_text(r, n) if n in ("train_J", "lineage_train_J") else fmt(_plain(r[n]))

    lines += ["| " + " | ".join(cell(r, n) for n in names) + " |" for _, r in table.iterrows()]
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def _plain(value: Any) -> Any:
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value
