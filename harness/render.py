"""The table as people read it: markdown and LaTeX (booktabs), in two parts.

Part 1 answers "which variant buys the most accuracy per joule"; part 2 answers "what
did it cost to make, and when does that pay back". Every header carries its unit; the
footnotes give the energy method, its formula, the carbon constants and any warning.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import pandas as pd

from harness import stats
from harness.columns import LOWER_BOUNDS, is_bound
from harness.table import CV_WARN, fmt_target

Cell = Callable[[pd.Series], str]


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
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5):
            return f"{value:.3g}"
        return f"{value:.4g}"
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


#: A break-even whose saving per inference is not significant.
NOT_SIGNIFICANT = "n.s."


def break_even_text(r: pd.Series) -> str:
    if r.get("break_even_never") is True or r.get("break_even_never") is np.True_:
        return "never"
    if r.get("break_even_significant") is False or r.get("break_even_significant") is np.False_:
        return NOT_SIGNIFICANT  # the saving's interval reaches the parent's: no break-even from noise
    if pd.isna(r["break_even_inferences"]) and pd.notna(r.get("parent")) and pd.isna(r.get("train_J")):
        return UNKNOWN  # made outside joulebench: what it cost to create is not known
    return mark(r, "break_even_inferences") + fmt(r["break_even_inferences"]) if pd.notna(r["break_even_inferences"]) else "-"


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
    return ("≥ " if col in LOWER_BOUNDS else "≤ ") if is_bound(r, col) else ""


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
    ("Pareto", lambda r: "yes" if r["pareto"] else ""),
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


def _rows(table: pd.DataFrame, spec: list[tuple[str, Cell]]) -> tuple[list[str], list[list[str]]]:
    return [h for h, _ in spec], [[str(cell(r)) for _, cell in spec] for _, r in table.iterrows()]


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
    from harness import columns

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
    from harness import columns

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


TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "_": r"\_", "#": r"\#", "$": r"\$",
       "{": r"\{", "}": r"\}", "±": r"$\pm$", "Δ": r"$\Delta$", "~": r"\textasciitilde{}", "^": r"\^{}",
       # safe under LaTeX's default OT1 encoding, where < and > print as ¡ and ¿
       "<": r"\textless{}", ">": r"\textgreater{}", "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$",
       "µ": r"$\mu$", "−": "-", "–": "--", "—": "---"}


def _tex_escape(text: str) -> str:
    """Plain text as LaTeX that compiles under the default font encoding (OT1) and T1."""
    return "".join(TEX.get(ch, ch) for ch in str(text))


def _label(title: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-") or "run"


def latex(table: pd.DataFrame, notes: list[str], title: str = "") -> str:
    """The full table (``table_full.tex``): every column of the markdown in two booktabs
    tables on landscape-width floats (``table*``); for an appendix or supplement, not a
    column. Needs \\usepackage{booktabs}."""
    name = title or "joulebench"
    out = ["% generated by joulebench: the full table (every column); needs \\usepackage{booktabs}"]
    for part, (heading, spec) in enumerate((("Accuracy per joule", with_declared(MAIN, "main")),
                                            ("Cost to create, lifecycle and carbon", with_declared(COST, "cost")))):
        headers, rows = _rows(table, spec)
        out += ["\\begin{table*}[p]", "\\centering", "\\scriptsize", "\\setlength{\\tabcolsep}{2pt}",
                f"\\caption{{{_tex_escape(name)}: {heading.lower()} (all columns)}}",
                f"\\label{{tab:{_label(name)}-full-{part + 1}}}",
                "\\begin{tabular}{" + "l" * len(headers) + "}", "\\toprule",
                " & ".join(_tex_escape(h) for h in headers) + " \\\\", "\\midrule"]
        out += [" & ".join(_tex_escape(c) for c in row) + " \\\\" for row in rows]
        out += ["\\bottomrule", "\\end{tabular}", "\\end{table*}", ""]
    out += ["\\begin{itemize}"] + [f"\\item {_tex_escape(n)}" for n in notes] + ["\\end{itemize}", ""]
    return "\n".join(out)


# -- the paper table: fits \columnwidth of a two-column article -----------------------
#: the prefix of a per-joule rate read as "per <prefix>J": k/J -> per mJ
INVERSE = {"k": "m", "M": "µ", "G": "n", "": ""}
PREFIXES = ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))


def scale_for(values: list[float]) -> tuple[float, str]:
    """The SI prefix that puts the column's largest magnitude in [1, 1000)."""
    finite = [abs(v) for v in values if v is not None and not pd.isna(v) and math.isfinite(v) and v != 0]
    if not finite:
        return 1.0, ""
    top = max(finite)
    for factor, prefix in PREFIXES:
        if top >= factor:
            return factor, prefix
    return PREFIXES[-1]


def sig3(value: float) -> str:
    """Three significant digits, never an exponent (the column's prefix carries the scale)."""
    if value == 0:
        return "0"
    decimals = max(0, 2 - math.floor(math.log10(abs(value))))
    return f"{value:.{decimals}f}"


def _num(value: Any, factor: float = 1.0) -> str:
    if value is None or pd.isna(value):
        return "--"
    return sig3(float(value) / factor)


def stack(top: str, below: str, align: str = "r") -> str:
    """Two lines in one cell (plain LaTeX: no makecell), the second in a smaller size;
    ``top`` and ``below`` are LaTeX already."""
    return f"\\shortstack[{align}]{{{top}\\\\[-1pt]{{\\tiny {below}}}}}" if below else top


def _paper_cells() -> dict[str, tuple[str, Callable[[pd.Series, float], str], str]]:
    """Column name -> (header, cell(row, scale), unit): how the paper table shows it.
    Cells return LaTeX; a value beside its interval or test is stacked under it."""
    def accuracy(r, _):
        if pd.isna(r["accuracy"]):
            return "--"
        return stack(f"{100 * r['accuracy']:.1f}",
                     f"[{100 * r['accuracy_ci95_lo']:.1f}, {100 * r['accuracy_ci95_hi']:.1f}]")

    def delta(r, _):
        if pd.isna(r["accuracy_delta_vs_parent"]):
            return "--"
        p = r["delta_p"]
        shown = "" if pd.isna(p) else ("$p<0.001$" if p < 1e-3 else f"$p={p:.2g}$")
        return stack(f"${100 * r['accuracy_delta_vs_parent']:+.1f}$", shown)

    def variant(r, _):
        technique = str(r["variant"])
        return stack(_tex_escape(r["variant_id"]), _tex_escape(technique), "l") if technique != "baseline" else \
            _tex_escape(r["variant_id"])

    def breakeven(r, _):
        if r.get("break_even_never") is True or r.get("break_even_never") is np.True_:
            return "never"
        if break_even_text(r) == NOT_SIGNIFICANT:
            return NOT_SIGNIFICANT
        value = r["break_even_inferences"]
        if value is None or pd.isna(value):
            return UNKNOWN if break_even_text(r) == UNKNOWN else "--"
        factor, prefix = scale_for([value])
        return f"{_tex_escape(mark(r, 'break_even_inferences'))}{sig3(value / factor)}{prefix}"

    return {
        "variant_id": ("variant", variant, ""),
        "variant": ("technique", lambda r, _: _tex_escape(r["variant"]), ""),
        "accuracy": (stack("acc. \\%", "[95\\% CI]"), accuracy, ""),
        "accuracy_delta_vs_parent": (stack("$\\Delta$", "(pp)"), delta, ""),
        "J_per_inference": ("J/inf.", lambda r, f: _tex_escape(mark(r, "J_per_inference")) + _num(r["J_per_inference"], f),
                            "J"),
        "correct_per_J": ("correct", lambda r, f: _tex_escape(mark(r, "correct_per_J")) + _num(r["correct_per_J"], f),
                          "1/J"),
        "train_J": ("creation", lambda r, f: (UNKNOWN if r.get("train_J_source") == "unknown" else
                                              _tex_escape(mark(r, "train_J")) + _num(r["train_J"], f)
                                              + ("$^{r}$" if str(r.get("train_J_source") or "").startswith("reported")
                                                 else "")), "J"),
        "break_even_inferences": (stack("pays", "back after"), breakeven, ""),
    }


def paper_latex(table: pd.DataFrame, notes: list[str], title: str, names: list[str]) -> str:
    """``table.tex``: the compact table a paper takes as it is: a few columns that fit
    \\columnwidth of a two-column article, numbers scaled per column (the unit in the
    header), constant columns moved into the caption, a label, and notes condensed to
    the method, its uncertainty and the intervals. Needs \\usepackage{booktabs}."""
    from harness import columns

    cells = _paper_cells()
    shown = [n for n in names if not (n in ("variant", "device", "runtime", "task") and table[n].nunique() <= 1)]
    constant = [(n, table[n].iloc[0]) for n in ("task", "device", "runtime", "variant") if n in table.columns
                and table[n].nunique() == 1 and (n in names or n in ("task", "device"))]
    headers, getters = [], []
    for n in shown:
        header, cell, unit = cells.get(n, (_tex_escape(n.replace("_", " ")),
                                            lambda r, f, n=n: _tex_escape(_generic(r[n], f)),
                                            columns.by_name()[n].unit if n in columns.by_name() else ""))
        factor, prefix = (scale_for(list(table[n])) if unit and unit not in ("count", "fraction") else (1.0, ""))
        if unit == "1/J" and prefix in INVERSE:
            # a rate per joule reads better per mJ than per kilo-inverse-joule
            header = stack(header, f"(per {_tex_escape(INVERSE[prefix])}J)")
        elif unit and unit not in ("count", "fraction"):
            header = stack(header, f"({_tex_escape(prefix + unit)})")
        headers.append(header)
        getters.append(lambda r, cell=cell, factor=factor: cell(r, factor))
    methods = sorted(set(table["energy_method"]))
    unc = table["energy_uncertainty"].dropna()
    unc_s = (f"$\\pm${100 * unc.min():.2g}\\%" if len(unc) and unc.min() == unc.max() else
             f"$\\pm${100 * unc.min():.2g}--{100 * unc.max():.2g}\\%" if len(unc) else "unstated")
    given = "; ".join(f"{_tex_escape(n)} {_tex_escape(v)}" for n, v in constant)
    caption = (f"{_tex_escape(title)}: accuracy per joule ({given}). Energy: {_tex_escape(', '.join(methods))}, "
               f"stated uncertainty {unc_s}.")
    seeds = int(table["seeds"].max()) if len(table) else 0
    short = [
        f"Accuracy on the held-out eval split, {seeds} seed(s); 95\\% CI "
        + ("Wilson over examples" if seeds <= 1 else "bootstrap over seeds and examples")
        + "; $\\Delta$ vs the parent in percentage points, $p$ "
        + ("McNemar" if seeds <= 1 else "paired bootstrap") + ", not adjusted for multiplicity.",
        "J/inf.: median over measurement windows (gross); its interval is within one run and omitted here. "
        "creation: every window spent making the variant, per seed; break-even: inferences until creation is "
        "repaid against the parent.",
    ]
    sources = set(table["train_J_source"].dropna()) if "train_J_source" in table else set()
    if sources - {"measured"}:
        short.append("unknown: made outside joulebench (a given checkpoint or ONNX file), its creation energy not "
                     "measured" + ("; $^{r}$: creation energy reported by its maker, not measured"
                                   if any(str(x).startswith("reported") for x in sources) else "") + ".")
    warnings = [n for n in notes if n.startswith("WARNING")]
    if warnings:
        short.append(f"{len(warnings)} warning(s), e.g. noisy windows: see the full notes (table.md).")
    out = ["% generated by joulebench: the paper table; needs \\usepackage{booktabs,graphicx}. "
           "All columns: table_full.tex",
           "\\begin{table}[t]", "\\centering", "\\scriptsize", "\\setlength{\\tabcolsep}{2pt}",
           f"\\caption{{{caption}}}", f"\\label{{tab:{_label(title)}}}",
           # shrunk to the column only where user ids make it wider (needs graphicx)
           "\\resizebox{\\ifdim\\width>\\columnwidth\\columnwidth\\else\\width\\fi}{!}{%",
           "\\begin{tabular}{l" + "r" * (len(headers) - 1) + "}", "\\toprule",
           " & ".join(headers) + " \\\\", "\\midrule"]
    for _, r in table.iterrows():
        out.append(" & ".join(g(r) for g in getters) + " \\\\")
    out += ["\\bottomrule", "\\end{tabular}}", "", "\\vspace{2pt}",
            "\\parbox{\\linewidth}{\\tiny " + " ".join(short) + "}", "\\end{table}", ""]
    return "\n".join(out)


def _generic(value: Any, factor: float) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return _num(value, factor)
    return "--" if value is None or value is pd.NA else str(value)
