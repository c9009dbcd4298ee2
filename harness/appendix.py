"""Table + environment -> ``appendix.md`` and ``appendix.tex``: a compact reporting
section a paper can paste, in the spirit of Henderson et al. 2020's checklist.

Every figure comes from the same table the report renders (formatted by the same
``render.fmt``), so the appendix and ``table.md`` never disagree. Nothing is added that
was not measured: an energy obtained by the estimate meter is labelled an estimate in
the heading and in the method line, and a row whose creation energy came from another
host or method says so.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import pandas as pd

from harness.lifecycle import Carbon
from harness.latex import stack, tex_escape, tex_label
from harness.render import ci, creation_text, fmt, fmt_target, mark, unc_text

COLUMNS = ["variant", "device", "seeds", "accuracy [95% CI]", "train time (s)", "train energy (J)",
           "tuning energy (J)", "J to target (J)", "inference J per 1,000 queries", "lineage train gCO2e (g)",
           "gCO2e per 1,000 queries (g)", "energy method"]


def rows(table: pd.DataFrame) -> list[list[str]]:
    """The appendix's per-variant figures, formatted exactly as the table's."""
    out = []
    for _, r in table.iterrows():
        out.append([
            f"{r['task']}:{r['variant_id']}", r["device"], fmt(r["seeds"]),
            ci(r["accuracy"], r["accuracy_ci95_lo"], r["accuracy_ci95_hi"]),
            fmt(r["train_s"]), creation_text(r, "train_J"), fmt(r["tuning_J"]),
            "-" if pd.isna(r["J_to_target"]) else f"{fmt(r['J_to_target'])} ({fmt_target(r)})",
            mark(r, "J_per_inference") + fmt(1e3 * r["J_per_inference"]), creation_text(r, "train_gCO2e"),
            mark(r, "gCO2e_per_1e6_queries") + fmt(r["gCO2e_per_1e6_queries"] / 1e3),
            f"{r['energy_method']} ({unc_text(r['energy_uncertainty'])})",
        ])
    return out


def tex_table(table: pd.DataFrame) -> tuple[list[str], list[list[str]], str]:
    """The appendix's figures as a LaTeX table that fits a page: a value's interval or
    target stacked under it, headers over their units, and the columns that hold one
    value (task, device, energy method) said once in the caption. Returns (headers,
    rows, caption text)."""
    one = {c: table[c].nunique() == 1 for c in ("task", "device", "energy_method")}
    methods = [f"{m} ({unc_text(u)})" for m, u in zip(table["energy_method"], table["energy_uncertainty"])]
    one["energy_method"] = len(set(methods)) == 1
    headers = ["variant"] + ([] if one["device"] else ["device"]) + [
        "seeds", "accuracy (% [95% CI])", "train time (s)", "train (J)", "tuning (J)",
        "to target (J [target])", "1k queries (J)", "lineage (gCO2e)", "1k queries (gCO2e)"] + ([] if one["energy_method"] else ["energy method"])
    rows_ = []
    for (_, r), method in zip(table.iterrows(), methods):
        name = r["variant_id"] if one["task"] else f"{r['task']}:{r['variant_id']}"
        acc = stack(f"{100 * r['accuracy']:.1f}", f"[{100 * r['accuracy_ci95_lo']:.1f}, "
                                                   f"{100 * r['accuracy_ci95_hi']:.1f}]")
        target = "--" if pd.isna(r["J_to_target"]) else stack(fmt(r["J_to_target"]), tex_escape(f"[{fmt_target(r)}]"))
        cells = [tex_escape(name)] + ([] if one["device"] else [tex_escape(r["device"])]) + [
            fmt(r["seeds"]), acc, fmt(r["train_s"]), tex_escape(creation_text(r, "train_J")), _dash(fmt(r["tuning_J"])), target,
            *map(tex_escape, (mark(r, "J_per_inference") + fmt(1e3 * r["J_per_inference"]),
                               creation_text(r, "train_gCO2e"),
                               mark(r, "gCO2e_per_1e6_queries") + fmt(r["gCO2e_per_1e6_queries"] / 1e3)))]
        rows_.append(cells + ([] if one["energy_method"] else [tex_escape(method)]))
    said = [f"{k} {v}" for k, v in (("task", table["task"].iloc[0] if one["task"] else None),
                                    ("device", table["device"].iloc[0] if one["device"] else None),
                                    ("energy", methods[0] if one["energy_method"] else None)) if v is not None]
    return [_header(h) for h in headers], rows_, "; ".join(said)


def _dash(text: str) -> str:
    return "--" if text == "-" else tex_escape(text)


def _header(text: str) -> str:
    """A header over two lines at its unit: ``train energy`` / ``(J)``."""
    name, _, unit = text.partition(" (")
    return stack(tex_escape(name), tex_escape(f"({unit}")) if unit else tex_escape(name)


def command(env: dict[str, Any], run_dir: Path) -> str:
    """The command that reproduces the run: as recorded, else rebuilt from the suite."""
    if env.get("command"):
        return shlex.join(env["command"])
    suite = env.get("suite", {})
    args = ["joulebench", "run", suite.get("path", "SUITE.yaml")]
    if suite.get("profile") == "quick":
        args.append("--quick")
    return shlex.join(args + ["--out", str(run_dir)])


def facts(env: dict[str, Any], table: pd.DataFrame, carbon: Carbon, sweeps: pd.DataFrame,
          run_dir: Path) -> list[tuple[str, str]]:
    """(heading, text) pairs, the same in markdown and LaTeX."""
    gpu = ", ".join(env.get("gpu") or []) or "none"
    device = env.get("device") or {}
    methods = sorted({m for m in table["energy_method"]})
    estimated = any("estimate" in m for m in methods)
    idle = env.get("idle_w") or {}
    data = env.get("data") or {}
    seeds = sorted({int(s) for s in (env.get("suite", {}).get("resolved", {}).get("seeds") or [])})
    carved = data.get("validation")
    items = [
        ("Hardware", f"host {env.get('host', '?')}; CPU {env.get('cpu_model', '?')} ({env.get('logical_cpus', '?')} "
                     f"logical CPUs, {env.get('torch_threads', '?')} torch threads); GPUs: {gpu}"
                     + (f" (driver {env['gpu_driver']})" if env.get("gpu_driver") else "")
                     + f"; the runs used {device.get('name', 'cpu')}"
                     + (f" ({device['model']})" if device.get("model") else "") + "."),
        ("Software", f"joulebench {env.get('joulebench', '?')} at commit {env.get('git_commit') or 'unknown'}"
                     + (" (with uncommitted changes)" if env.get("git_dirty") else "")
                     + f"; Python {env.get('python', '?')}, torch {env.get('torch', '?')}, transformers "
                       f"{env.get('transformers', '?')}, numpy {env.get('numpy', '?')}; {env.get('platform', '')}."),
        ("Energy method", ("ESTIMATED, not measured: " if estimated else "Measured: ")
         + "; ".join(env.get("meter_formulas") or []) + f". Methods in the table: {', '.join(methods)}. Stated "
           "uncertainty per row in the last column (systematic, components added)."),
        ("Idle power", (", ".join(f"{c} {fmt(w)} W" for c, w in idle.items()) + f" (total {fmt(sum(idle.values()))} "
                        "W), measured before the runs with the same meter; net figures subtract it.")
         if idle else "not measured (measure.idle_s: 0); all figures are gross."),
        ("Data", f"{data.get('source', '?')}: {data.get('n_train', '?')} training examples; accuracy on "
                 f"{data.get('eval_split', 'the eval split')} ({data.get('n_eval', '?')} examples), never trained or "
                 "tuned on." + (f" Validation for curves and selection: {carved['n']} examples carved from the "
                                f"training split (fraction {carved['fraction']:g}, seed {carved['seed']})."
                                if carved else "")),
        ("Seeds", (", ".join(map(str, seeds)) or "?") + "; accuracy intervals resample seeds and examples together "
                  "when there are several."),
        ("Carbon", carbon.describe() + "; lineage train gCO2e covers every joule spent creating the row, its "
                   "ancestors and any search that chose it."),
    ]
    for _, s in sweeps.iterrows():
        items.append((f"Hyperparameter search ({s['model']})",
                      f"{s['method']} over {s['configurations']} configurations ({s['trial_runs']} runs), selected "
                      f"{s['selected']} ({s['selected_params']}) on validation accuracy (min / median / max "
                      f"{fmt(s['val_accuracy_min'])} / {fmt(s['val_accuracy_median'])} / "
                      f"{fmt(s['val_accuracy_max'])}); the search cost {fmt(s['tuning_J'])} J, "
                      f"{s['tuning_to_train_ratio']:.3g}x the final training ({fmt(s['train_J'])} J)."))
    items.append(("Reproduce", command(env, run_dir)))
    # the rerun compared figure by figure with this run (reproduction.md: identical, within, differs)
    items.append(("Check a rerun", shlex.join(["joulebench", "reproduce", str(run_dir), "--quick-subset"])))
    return items


#: Facts printed as commands.
COMMANDS = ("Reproduce", "Check a rerun")


def markdown(env: dict[str, Any], table: pd.DataFrame, carbon: Carbon, sweeps: pd.DataFrame, run_dir: Path) -> str:
    suite = env.get("suite", {})
    lines = [f"## Energy and compute report: {suite.get('name', '?')} ({suite.get('profile', '?')} profile)", ""]
    lines += [f"- **{h}.** {t if h not in COMMANDS else '`' + t + '`'}" for h, t in facts(env, table, carbon, sweeps,
                                                                                        run_dir)]
    lines += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in rows(table)]
    lines += ["", "Train energy: the variant's own creation windows (validation passes excluded); tuning energy: "
                  "the whole search that chose the row's hyperparameters; J to target: training energy at which "
                  "validation accuracy first reached the target shown; inference J per 1,000 queries: 1,000 x the "
                  "median J per inference (gross) at the suite's batch size.", ""]
    return "\n".join(lines)


def latex(env: dict[str, Any], table: pd.DataFrame, carbon: Carbon, sweeps: pd.DataFrame, run_dir: Path) -> str:
    suite = env.get("suite", {})
    out = ["% generated by joulebench report --appendix; needs \\usepackage{booktabs,graphicx}",
           f"\\subsection*{{Energy and compute report: {tex_escape(str(suite.get('name', '?')))} "
           f"({tex_escape(str(suite.get('profile', '?')))} profile)}}", "\\begin{itemize}"]
    for h, t in facts(env, table, carbon, sweeps, run_dir):
        # a long path may break after any slash: a command never runs into the margin
        body = ("\\texttt{" + tex_escape(t).replace("/", "/\\allowbreak{}") + "}" if h in COMMANDS
                else tex_escape(t))
        out.append(f"\\item \\textbf{{{tex_escape(h)}.}} {body}")
    # full text width (table*), shrunk only where user ids make it wider (needs graphicx)
    headers, body, said = tex_table(table)
    out += ["\\end{itemize}", "\\begin{table*}[t]", "\\centering", "\\scriptsize", "\\setlength{\\tabcolsep}{3pt}",
            f"\\caption{{{tex_escape(str(suite.get('name', '?')))}: energy and compute per variant "
            f"({tex_escape(said)}). train: the energy of making the variant, per seed; to target: training energy "
            "until validation accuracy first reached the target; 1k queries: inference energy and carbon of 1,000 "
            "queries; lineage: the carbon of creating it and its ancestors.}",
            f"\\label{{tab:{tex_label(str(suite.get('name', 'run')))}-appendix}}",
            "\\resizebox{\\ifdim\\width>\\textwidth\\textwidth\\else\\width\\fi}{!}{%",
            "\\begin{tabular}{l" + "r" * (len(headers) - 1) + "}", "\\toprule",
            " & ".join(headers) + " \\\\", "\\midrule"]
    out += [" & ".join(row) + " \\\\" for row in body]
    out += ["\\bottomrule", "\\end{tabular}}", "\\end{table*}", ""]
    return "\n".join(out)
