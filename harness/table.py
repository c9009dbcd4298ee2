"""Records -> the table: energy beside accuracy, one row per variant (and per suite).

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
    "suite", "task", "model", "variant_id", "variant", "parent", "params_desc", "seeds",
    "params", "nonzero_params", "size_bytes", "sparsity", "sparsity_exploited",
    "flops_per_inference", "train_flops", "n_eval",
    "accuracy", "accuracy_ci95_lo", "accuracy_ci95_hi", "accuracy_seed_std", "accuracy_delta_vs_parent", "mcnemar_p",
    "train_J", "train_J_net", "train_s",
    "J_per_inference", "J_per_inference_ci95_lo", "J_per_inference_ci95_hi", "J_per_inference_cv",
    "J_per_inference_seed_std", "J_per_inference_net", "J_per_inference_net_ci95_lo", "J_per_inference_net_ci95_hi",
    "idle_W", "inferences_per_s", "correct_per_J", "energy_method", "energy_uncertainty",
]

# Units of the numeric columns, for the README and the markdown header.
UNITS = {
    "params": "count", "nonzero_params": "count", "size_bytes": "bytes", "sparsity": "fraction",
    "flops_per_inference": "FLOP", "train_flops": "FLOP", "accuracy_seed_std": "fraction",
    "J_per_inference_seed_std": "J", "lineage_train_J": "J", "J_at_1e3_queries": "J", "J_at_1e6_queries": "J",
    "J_at_1e9_queries": "J", "train_gCO2e": "g", "gCO2e_per_1e6_queries": "g", "break_even_inferences": "inferences",
    "n_eval": "examples", "accuracy": "fraction", "accuracy_delta_vs_parent": "fraction",
    "train_J": "J", "train_J_net": "J", "train_s": "s", "J_per_inference": "J",
    "J_per_inference_cv": "fraction", "J_per_inference_net": "J", "idle_W": "W",
    "inferences_per_s": "1/s", "correct_per_J": "1/J",
}


def load_run_dirs(run_dirs: Iterable[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Records of every run dir. Within one records file, every record must come from the
    same suite and resolved config as the first; any other is skipped with a warning."""
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
        first = got[0]
        for rec in got:
            if (rec["suite"], rec["config_hash"]) != (first["suite"], first["config_hash"]):
                warnings.append(f"{path} line {rec['_line']} is from suite {rec['suite']!r} (config "
                                f"{rec['config_hash']}), not {first['suite']!r} ({first['config_hash']}) like line "
                                f"{first['_line']}; skipped it")
                continue
            recs.append(rec)
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


def _std(values: list[float]) -> float:
    """Sample std over seeds; NaN with a single seed (no spread to report)."""
    if len(values) < 2:
        return float("nan")
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _describe(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


def _row(group: list[dict[str, Any]], by_key: dict[tuple, dict[str, Any]]) -> dict[str, Any]:
    first = group[0]
    correct = sum(r["eval"]["correct"] for r in group)
    n = sum(r["eval"]["n"] for r in group)
    acc = correct / n
    lo, hi = stats.wilson(correct, n)
    seed_acc = [r["eval"]["accuracy"] for r in group]
    seed_j = [stats.median([w["energy_j"] / r["inference"]["inferences_per_window"]
                            for w in r["inference"]["windows"]]) for r in group]
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
    flops = first.get("flops", {})
    return {
        "suite": first["suite"], "task": first["task"], "model": first.get("architecture", first["model"]),
        "variant_id": first["variant_id"], "variant": first["variant"], "parent": first["parent"] or "-",
        "params_desc": _describe(first["params"]), "seeds": len(group),
        "params": first["n_params"], "nonzero_params": first.get("n_nonzero_params", first["n_params"]),
        "size_bytes": first.get("size_bytes"), "sparsity": info.get("sparsity"),
        "sparsity_exploited": info.get("sparsity_exploited", "-"),
        "flops_per_inference": flops.get("per_inference"), "train_flops": flops.get("train"),
        "n_eval": first["eval"]["n"],
        "accuracy": acc, "accuracy_ci95_lo": lo, "accuracy_ci95_hi": hi,
        "accuracy_seed_std": _std(seed_acc),
        "accuracy_delta_vs_parent": delta, "mcnemar_p": p,
        "train_J": sum(w["energy_j"] for ws in create for w in ws) / len(group),
        "train_J_net": sum(w["net_energy_j"] for ws in create for w in ws) / len(group),
        "train_s": sum(w["duration_s"] for ws in create for w in ws) / len(group),
        "J_per_inference": j_med, "J_per_inference_ci95_lo": j_lo, "J_per_inference_ci95_hi": j_hi,
        "J_per_inference_cv": stats.cv(per_inf),
        "J_per_inference_seed_std": _std(seed_j),
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
