"""Records -> the table: energy beside accuracy, one row per variant.

Statistics are computed here from raw values, never stored: accuracy pools correct
answers over seeds (Wilson 95% interval); J per inference is the median over every
window of every seed, with a distribution-free 95% interval and the CV; each variant is
tested against its parent with a paired McNemar test on the same eval examples.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from harness import records, stats
from harness.errors import UserError

CV_WARN = 0.05

COLUMNS = [
    "task", "model", "variant_id", "variant", "parent", "params_desc", "seeds",
    "params", "nonzero_params", "size_bytes", "sparsity", "sparsity_exploited", "n_eval",
    "accuracy", "accuracy_ci95_lo", "accuracy_ci95_hi", "accuracy_delta_vs_parent", "mcnemar_p",
    "train_J", "train_J_net", "train_s",
    "J_per_inference", "J_per_inference_ci95_lo", "J_per_inference_ci95_hi", "J_per_inference_cv",
    "J_per_inference_net", "J_per_inference_net_ci95_lo", "J_per_inference_net_ci95_hi",
    "idle_W", "inferences_per_s", "correct_per_J", "energy_method", "energy_uncertainty",
]

# Units of the numeric columns, for the README and the markdown header.
UNITS = {
    "params": "count", "nonzero_params": "count", "size_bytes": "bytes", "sparsity": "fraction",
    "n_eval": "examples", "accuracy": "fraction", "accuracy_delta_vs_parent": "fraction",
    "train_J": "J", "train_J_net": "J", "train_s": "s", "J_per_inference": "J",
    "J_per_inference_cv": "fraction", "J_per_inference_net": "J", "idle_W": "W",
    "inferences_per_s": "1/s", "correct_per_J": "1/J",
}


def load_run_dirs(run_dirs: Iterable[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    recs: list[dict[str, Any]] = []
    warnings: list[str] = []
    for d in run_dirs:
        path = Path(d) / records.RECORDS
        if not path.is_file():
            raise UserError(f"{d} holds no {records.RECORDS}; pass a run directory written by 'joulebench run'")
        got, warn = records.load(path)
        warnings += warn
        if not got:
            raise UserError(f"{path} holds no complete records; rerun the suite")
        recs += got
    return recs, warnings


def _correct(rec: dict[str, Any]) -> list[bool]:
    return [p == y for p, y in zip(rec["eval"]["predictions"], rec["eval"]["labels"])]


def _vs_parent(group: list[dict[str, Any]], by_key: dict[tuple, dict[str, Any]]) -> tuple[float, float]:
    """(accuracy delta, McNemar p) pooled over the seeds both variant and parent have."""
    mine, theirs = [], []
    for r in group:
        parent = by_key.get((r["suite"], r["parent"], r["seed"]))
        if parent is not None and parent["eval"]["n"] == r["eval"]["n"]:
            mine += _correct(r)
            theirs += _correct(parent)
    if not mine:
        return float("nan"), float("nan")
    _, _, p = stats.mcnemar(theirs, mine)
    return (sum(mine) - sum(theirs)) / len(mine), p


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


def _row(group: list[dict[str, Any]], by_key: dict[tuple, dict[str, Any]]) -> dict[str, Any]:
    first = group[0]
    correct = sum(r["eval"]["correct"] for r in group)
    n = sum(r["eval"]["n"] for r in group)
    acc = correct / n
    lo, hi = stats.wilson(correct, n)
    per_inf, per_inf_net, rates, methods, unc = [], [], [], set(), set()
    for r in group:
        inf = r["inference"]
        for w in inf["windows"]:
            per_inf.append(w["energy_j"] / inf["inferences_per_window"])
            per_inf_net.append(w["net_energy_j"] / inf["inferences_per_window"])
            rates.append(inf["inferences_per_window"] / w["duration_s"])
            for c in w["components"]:
                methods.add(c["method"])
                unc.add(c["uncertainty_rel"])
    j_med = stats.median(per_inf)
    j_lo, j_hi = stats.median_ci(per_inf)
    net_lo, net_hi = stats.median_ci(per_inf_net)
    # Creation energy: the training (or compression) window plus any extra windows it
    # needed, such as the teacher's logits for distillation.
    create = [[r["train"]["window"], *r["train"].get("extra_windows", {}).values()] for r in group]
    delta, p = _vs_parent(group, by_key) if first["parent"] else (float("nan"), float("nan"))
    info = first.get("technique_info", {})
    return {
        "task": first["task"], "model": first.get("architecture", first["model"]),
        "variant_id": first["variant_id"], "variant": first["variant"], "parent": first["parent"] or "-",
        "params_desc": _describe(first["params"]), "seeds": len(group),
        "params": first["n_params"], "nonzero_params": first.get("n_nonzero_params", first["n_params"]),
        "size_bytes": first.get("size_bytes"), "sparsity": info.get("sparsity"),
        "sparsity_exploited": info.get("sparsity_exploited", "-"), "n_eval": first["eval"]["n"],
        "accuracy": acc, "accuracy_ci95_lo": lo, "accuracy_ci95_hi": hi,
        "accuracy_delta_vs_parent": delta, "mcnemar_p": p,
        "train_J": sum(w["energy_j"] for ws in create for w in ws) / len(group),
        "train_J_net": sum(w["net_energy_j"] for ws in create for w in ws) / len(group),
        "train_s": sum(w["duration_s"] for ws in create for w in ws) / len(group),
        "J_per_inference": j_med, "J_per_inference_ci95_lo": j_lo, "J_per_inference_ci95_hi": j_hi,
        "J_per_inference_cv": stats.cv(per_inf),
        "J_per_inference_net": stats.median(per_inf_net),
        "J_per_inference_net_ci95_lo": net_lo, "J_per_inference_net_ci95_hi": net_hi,
        "idle_W": first["train"]["window"]["idle_w"],
        "inferences_per_s": stats.median(rates),
        "correct_per_J": acc / j_med,
        "energy_method": "+".join(sorted(methods)),
        "energy_uncertainty": "+-" + "/".join(f"{u:.0%}" for u in sorted(unc)),
    }


def build_table(recs: list[dict[str, Any]]) -> pd.DataFrame:
    ok = [r for r in recs if r.get("status", "ok") == "ok"]
    by_key = {(r["suite"], r["variant_id"], r["seed"]): r for r in ok}
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in ok:
        groups.setdefault((r["suite"], r["task"], r["variant_id"]), []).append(r)
    return pd.DataFrame([_row(g, by_key) for g in groups.values()], columns=COLUMNS)


def footnotes(recs: list[dict[str, Any]], table: pd.DataFrame) -> list[str]:
    notes = []
    for formula in sorted({f for r in recs for f in r["meter"]["formulas"]}):
        notes.append(f"Energy method: {formula}")
    notes.append("accuracy: on the held-out eval split, Wilson 95% CI; delta and McNemar p (exact binomial "
                 "when b+c < 25) vs the parent on the same examples. J/inference: median over windows, "
                 "distribution-free 95% CI; net = gross - idle W x window s. correct/J = accuracy / gross "
                 "J/inference. train J includes every window spent creating the variant. Units: J, s, W, bytes.")
    for r in recs:
        if r.get("status") == "skipped":
            notes.append(f"skipped {r['variant_id']} (seed {r['seed']}): {r['reason']}")
    for _, row in table.iterrows():
        if row["J_per_inference_cv"] > CV_WARN:
            notes.append(f"WARNING: {row['variant_id']} ({row['task']}): J_per_inference CV "
                         f"{row['J_per_inference_cv']:.1%} > {CV_WARN:.0%}; the machine was noisy, rerun or lengthen windows.")
    return notes


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value != 0 and (abs(value) < 1e-2 or abs(value) >= 1e5):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def _ci(value: float, lo: float, hi: float) -> str:
    return f"{_fmt(value)} [{_fmt(lo)}, {_fmt(hi)}]"


def to_markdown(table: pd.DataFrame, notes: list[str]) -> str:
    """Every energy cell shows gross and net; intervals are 95%; units in the headers."""
    headers = ["task", "variant", "parent", "technique (params)", "seeds", "params / nonzero", "size (bytes)",
               "sparsity (exploited?)", "n_eval", "accuracy [95% CI]", "delta vs parent (McNemar p)",
               "train J gross / net", "train s", "J/inference gross [95% CI]", "J/inference net [95% CI]",
               "J/inference CV", "idle W", "inferences/s", "correct/J (1/J)", "energy method (stated unc.)"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for _, r in table.iterrows():
        sparsity = "-" if r["sparsity"] is None or pd.isna(r["sparsity"]) else \
            f"{r['sparsity']:.1%} ({str(r['sparsity_exploited']).split(':')[0]})"
        delta = "-" if pd.isna(r["accuracy_delta_vs_parent"]) else \
            f"{r['accuracy_delta_vs_parent']:+.4f} (p={r['mcnemar_p']:.3g})"
        cells = [r["task"], r["variant_id"], r["parent"], f"{r['variant']} ({r['params_desc']})", r["seeds"],
                 f"{r['params']} / {r['nonzero_params']}", r["size_bytes"], sparsity, r["n_eval"],
                 _ci(r["accuracy"], r["accuracy_ci95_lo"], r["accuracy_ci95_hi"]), delta,
                 f"{_fmt(r['train_J'])} / {_fmt(r['train_J_net'])}", _fmt(r["train_s"]),
                 _ci(r["J_per_inference"], r["J_per_inference_ci95_lo"], r["J_per_inference_ci95_hi"]),
                 _ci(r["J_per_inference_net"], r["J_per_inference_net_ci95_lo"], r["J_per_inference_net_ci95_hi"]),
                 f"{r['J_per_inference_cv']:.1%}" + (" (!)" if r["J_per_inference_cv"] > CV_WARN else ""),
                 _fmt(r["idle_W"]), _fmt(r["inferences_per_s"]), _fmt(r["correct_per_J"]),
                 f"{r['energy_method']} ({r['energy_uncertainty']})"]
        lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def write(run_dirs: list[Path], out_dir: Path | None = None) -> tuple[pd.DataFrame, str, list[str]]:
    """Build the table from run dirs and write table.csv/table.md into ``out_dir``
    (default: the single run dir). Returns (table, markdown, warnings)."""
    recs, warnings = load_run_dirs(run_dirs)
    table = build_table(recs)
    md = to_markdown(table, footnotes(recs, table))
    target = out_dir or (run_dirs[0] if len(run_dirs) == 1 else None)
    if target is not None:
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / "table.csv.tmp"
        table.to_csv(tmp, index=False)
        tmp.replace(target / "table.csv")
        (target / "table.md.tmp").write_text(md)
        (target / "table.md.tmp").replace(target / "table.md")
    return table, md, warnings
