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
from harness.render import _tex_escape, ci, fmt

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
            fmt(r["train_s"]), fmt(r["train_J"]), fmt(r["tuning_J"]),
            "-" if pd.isna(r["J_to_target"]) else f"{fmt(r['J_to_target'])} ({r['target_accuracy']})",
            fmt(1e3 * r["J_per_inference"]), fmt(r["train_gCO2e"]),
            fmt(r["gCO2e_per_1e6_queries"] / 1e3), f"{r['energy_method']} ({r['energy_uncertainty']})",
        ])
    return out


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
    return items


def markdown(env: dict[str, Any], table: pd.DataFrame, carbon: Carbon, sweeps: pd.DataFrame, run_dir: Path) -> str:
    suite = env.get("suite", {})
    lines = [f"## Energy and compute report: {suite.get('name', '?')} ({suite.get('profile', '?')} profile)", ""]
    lines += [f"- **{h}.** {t if h != 'Reproduce' else '`' + t + '`'}" for h, t in facts(env, table, carbon, sweeps,
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
    out = ["% generated by joulebench report --appendix; needs \\usepackage{booktabs}",
           f"\\subsection*{{Energy and compute report: {_tex_escape(str(suite.get('name', '?')))} "
           f"({_tex_escape(str(suite.get('profile', '?')))} profile)}}", "\\begin{itemize}"]
    for h, t in facts(env, table, carbon, sweeps, run_dir):
        body = f"\\texttt{{{_tex_escape(t)}}}" if h == "Reproduce" else _tex_escape(t)
        out.append(f"\\item \\textbf{{{_tex_escape(h)}.}} {body}")
    out += ["\\end{itemize}", "\\begin{table}[ht]", "\\centering", "\\scriptsize",
            "\\begin{tabular}{" + "l" * len(COLUMNS) + "}", "\\toprule",
            " & ".join(_tex_escape(c) for c in COLUMNS) + " \\\\", "\\midrule"]
    out += [" & ".join(_tex_escape(c) for c in row) + " \\\\" for row in rows(table)]
    out += ["\\bottomrule", "\\end{tabular}", "\\end{table}", ""]
    return "\n".join(out)
