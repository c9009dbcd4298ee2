"""Records -> the table: energy beside accuracy, one row per variant (and per suite).

Statistics are computed here from raw values, never stored (stats.py says which unit
each is valid for):
- accuracy pools correct answers over seeds; its 95% interval is Wilson over examples
  with one seed, and a bootstrap over seeds and examples with several;
- each variant is tested against its parent on the same eval examples: McNemar with
  one seed, a paired seeds x examples bootstrap with several;
- J per inference is, in one run, the median over every window of every seed, with a
  distribution-free 95% interval that is valid *within the run* (windows of one run
  share its machine state); over repeated runs, the median of the runs' medians, with
  an interval across runs (runs the unit, from 6 runs); and the CV over every window;
- the energy method names how creation and inference energy were obtained and where,
  when they differ (a creation window reused from a cache filled on another machine).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from harness import columns, comparable, records, samples, stats
from harness.curves import DEFAULT_TARGET_SHARE, j_to_target
from harness.plan import describe
from harness.records import RunRecord

CV_WARN = 0.05

def table_columns() -> list[str]:
    """The columns ``_row`` computes, in order (the lifecycle's and the derived ones
    follow; columns.py declares each one's type, unit and meaning)."""
    return [c.name for c in columns.COLUMNS
            if c.name not in columns.LIFECYCLE + columns.DECISIONS and c.compute is None]


def energy_method(group: list[RunRecord]) -> str:
    """How the joules were obtained: one method when creation and inference share
    method and host; else both, e.g. ``train: estimate@hostA; inference: nvml@hostB``."""
    create = sorted({w.provenance for r in group for w in r.train.windows()})
    infer = sorted({w.provenance for r in group for w in r.inference.windows})
    if not create or create == infer:  # no creation window: train_J_source says how creation is known
        return "+".join(sorted({w.method for r in group for w in r.inference.windows}))
    return f"train: {', '.join(create)}; inference: {', '.join(infer)}"


def _energy_columns(measured: list[RunRecord]) -> dict[str, Any]:
    """J/inference: the median over the windows of one run, its interval within the run;
    over several runs (repeated runs of the suite), the median of each run's median, its
    interval across runs (runs are the unit: order statistics over the run medians,
    empty under 6 runs) and the within-run columns empty, since no one run is meant."""
    sample, net = samples.energy(measured), samples.energy(measured, net=True)
    per_inf = [j for r in measured for j in r.inference.j_per_inference()]
    nan = float("nan")
    cv = stats.cv(per_inf)  # over every window, as measured
    # a window the monitor kept as an upper bound makes the median one too
    bound = {"J_per_inference_is_bound": any(w.below_resolution for r in measured for w in r.inference.windows)}
    if sample.unit == "windows":
        # fewer than 6 windows (a suite needs 6; older or planted records) have no interval
        j_lo, j_hi = stats.median_ci(sample.values) if len(per_inf) >= 6 else (nan, nan)
        net_lo, net_hi = stats.median_ci(net.values) if len(per_inf) >= 6 else (nan, nan)
        return {**bound, "J_per_inference": sample.point, "J_per_inference_runs": 1, "J_per_inference_cv": cv,
                "J_per_inference_within_run_ci95_lo": j_lo, "J_per_inference_within_run_ci95_hi": j_hi,
                "J_per_inference_across_runs_ci95_lo": nan, "J_per_inference_across_runs_ci95_hi": nan,
                "J_per_inference_net": net.point,
                "J_per_inference_net_within_run_ci95_lo": net_lo, "J_per_inference_net_within_run_ci95_hi": net_hi}
    lo, hi = stats.median_ci(sample.values) if len(sample.values) >= 6 else (nan, nan)
    return {**bound, "J_per_inference": sample.point, "J_per_inference_runs": len(sample.values),
            "J_per_inference_cv": cv,
            "J_per_inference_within_run_ci95_lo": nan, "J_per_inference_within_run_ci95_hi": nan,
            "J_per_inference_across_runs_ci95_lo": lo, "J_per_inference_across_runs_ci95_hi": hi,
            "J_per_inference_net": net.point,
            "J_per_inference_net_within_run_ci95_lo": nan, "J_per_inference_net_within_run_ci95_hi": nan}


def _row(measured: list[RunRecord], by_key: dict[tuple, RunRecord]) -> dict[str, Any]:
    group = samples.one_per_model(measured)  # accuracy, creation: each trained model once
    first = group[0]
    correct = samples.correctness(group)
    acc = float(correct.mean())
    interval = stats.accuracy_interval(correct)
    energy = _energy_columns(measured)
    j_med = energy["J_per_inference"]
    pair = samples.paired(group, by_key) if first.parent else None
    test = stats.paired_accuracy_test(*pair) if pair else None
    info = first.technique_info
    windows = [w for r in measured for w in r.inference.windows]
    unc = stats.median([w_unc(w) for w in windows])  # each window's stated uncertainty (NVML's +-5 W varies)
    return {
        "suite": first.suite, "task": first.task, "model": first.architecture or first.model,
        "variant_id": first.variant_id, "variant": first.variant, "parent": first.parent or None,
        "params_desc": describe(first.params), "runtime": runtime_label(first.runtime), "seeds": len(group),
        "device": device_label(group),
        "params": first.n_params, "nonzero_params": first.n_nonzero_params or first.n_params,
        "size_bytes": first.size_bytes, "sparsity": sparsity(first, by_key) if info.get("sparsity_scope") else None,  # pruned rows only
        **sparsity_columns(info.get("sparsity_exploited")),
        "flops_per_inference": first.flops.get("per_inference"), "train_flops": first.flops.get("train"),
        "n_eval": first.eval.n,
        "accuracy": acc, "accuracy_ci95_lo": interval.lo, "accuracy_ci95_hi": interval.hi,
        "accuracy_ci_method": interval.method,
        "accuracy_seed_std": stats.std([r.eval.accuracy for r in group]),
        "macro_f1": float(np.mean([metric(r, "macro_f1") for r in group])),
        "task_metric": first.data.get("metric", "accuracy"),
        "task_metric_value": float(np.mean([metric(r, first.data.get("metric", "accuracy")) for r in group])),
        "accuracy_delta_vs_parent": test.delta if test else float("nan"),
        "delta_p": test.p if test else float("nan"), "delta_test": test.method if test else None,
        **creation_columns(group),
        **curve_columns(group),
        # a swept model's baseline: every trial of the search, validation passes included,
        # per seed (every configuration once) like train_J, so lineage adds like to like
        "tuning_J": first.sweep["tuning_J_per_seed"] if first.sweep else float("nan"),
        **energy,
        "J_per_inference_seed_std": stats.std([stats.median(r.inference.j_per_inference()) for r in group]),
        # idle power of *this* run's machine, from its inference windows: a cached
        # creation window from another machine never lends its idle figure here
        "idle_W": stats.median([w.idle_w for r in measured for w in r.inference.windows]),
        "inferences_per_s": stats.median([x for r in measured for x in r.inference.rates()]),
        "correct_per_J": acc / j_med,
        **work_columns(measured),
        "energy_method": energy_method(measured),
        "energy_uncertainty": unc,
        # graphs compiled inside measured windows (compile only; must be 0)
        **comparable.provenance(group),
        "shared_windows": (None if all(w.others_cpu_share is None and w.others_on_gpu is None for w in windows)
                           else sum(w.shared for w in windows)),
        "unsettled_windows": (None if all(w.unsettled is None for w in windows)
                              else sum(bool(w.unsettled) for w in windows)),
        "compiles_in_windows": (None if all(r.inference.compiles_in_windows is None for r in measured) else
                                sum(inf.compiles_in_windows or 0 for r in measured for inf in r.inferences())),
    }


def creation_columns(group: list[RunRecord]) -> dict[str, Any]:
    """Creation energy per seed and how it is known. A variant made outside joulebench
    has no window: its train J is unknown (null, never 0 J), or the user's reported
    figure (plus any window measured on top of it, e.g. an export); its net figure and
    duration are unknown either way. A creation window below the meter's resolution
    bounds its work's energy (gross) but has no net figure."""
    nan = float("nan")
    create = [w for r in group for w in r.train.windows()]
    sources = {r.train.source for r in group}
    bound = any(w.below_resolution for w in create)
    if "unknown" in sources:
        return {"train_J": nan, "train_J_net": nan, "train_s": nan, "train_J_source": "unknown",
                "train_J_is_bound": False}
    measured = sum(w.energy_j for w in create) / len(group)
    if "reported" in sources:
        reported = sum(r.train.reported_j or 0.0 for r in group) / len(group)
        return {"train_J": reported + measured, "train_J_net": nan, "train_s": nan,
                "train_J_source": "reported" + (" + measured" if create else ""), "train_J_is_bound": bound}
    return {"train_J": measured,
            "train_J_net": nan if bound else sum(w.net_energy_j for w in create) / len(group),
            "train_s": sum(w.work_s if w.work_s is not None else w.duration_s for w in create) / len(group),
            "train_J_source": "measured", "train_J_is_bound": bound}


def work_columns(measured: list[RunRecord]) -> dict[str, Any]:
    """Instructions per inference at the table's batch size: the median over records
    (runs and seeds) of each one's count, and how it was counted (or why not)."""
    blocks = [r.inference.work for r in measured if r.inference.work is not None]
    counts = [w.per_inference for w in blocks if w.per_inference is not None]
    if counts:
        w = next(w for w in blocks if w.per_inference is not None)
        over = f"{w.batches[0]} of the {w.batches[1]} eval batches" if w.batches else "the eval split"
        how = f"{w.tool}, {w.threads} thread, {w.passes} pass(es) over {over}"
        if w.batches and w.sample_error:
            how += f" ({w.sample_error})"
        return {"instructions_per_inference": stats.median(counts), "work_method": how}
    reasons = sorted({w.skipped for w in blocks if w.skipped})
    return {"instructions_per_inference": float("nan"), "work_method": "; ".join(reasons) or None}


def curve_columns(group: list[RunRecord]) -> dict[str, Any]:
    """From the seeds' training curves: final validation accuracy, the energy to first
    reach the target (mean over seeds; empty unless every seed reached it), and the
    validation passes' own energy. All empty without curves."""
    curves = [r.curve for r in group if r.curve is not None and r.curve.points]
    nan = float("nan")
    empty = {"val_accuracy": nan, "target_accuracy": nan, "target_share_of_final": nan, "J_to_target": nan,
             "J_to_target_seeds_reached": None, "curve_eval_J": nan}
    if not curves:
        return empty
    target = curves[0].target_accuracy
    points = [[p.model_dump() for p in c.points] for c in curves]
    reached = [j_to_target(p, target) for p in points]
    hits = [j for j in reached if j is not None]
    return {"val_accuracy": float(np.mean([p[-1]["val_accuracy"] for p in points])),
            "target_accuracy": target if target is not None else nan,
            "target_share_of_final": DEFAULT_TARGET_SHARE if target is None else nan,
            "J_to_target": float(np.mean(hits)) if len(hits) == len(group) else nan,
            "J_to_target_seeds_reached": len(hits),
            "curve_eval_J": float(np.mean([c.eval_j for c in curves]))}


def sparsity_columns(note: str | None) -> dict[str, Any]:
    """A technique's ``sparsity_exploited`` sentence ("yes: smaller dense layers", "no:
    dense kernels multiply the zeros") as a flag and its note. Never null: where nothing
    was pruned there are no zeros to skip (false, no note); a pending conversion is not
    yet an exploitation (false, its note says so)."""
    if not note:
        return {"sparsity_exploited": False, "sparsity_note": None}
    return {"sparsity_exploited": note.split(":", 1)[0].strip().lower() == "yes", "sparsity_note": note}


def runtime_label(runtime: dict[str, Any]) -> str:
    """``eager``, ``onnxruntime``, ``compile (mode=max-autotune)``: options that differ
    from the runtime's defaults are shown."""
    from harness import runtimes

    name, options = runtime.get("name", "eager"), runtime.get("options") or {}
    try:
        defaults = runtimes.RUNTIMES.get(name)().options()
    except Exception:  # a runtime this joulebench does not know (records from a newer one)
        defaults = {}
    shown = {k: v for k, v in options.items() if defaults.get(k, object()) != v}
    return name + (f" ({describe(shown)})" if shown else "")


def metric(rec: RunRecord, name: str) -> float:
    """One seed's ``name`` on the eval split: accuracy, macro_f1 (the unweighted mean of
    per-class F1 over the classes present), f1 (of label 1: GLUE's MRPC/QQP), mcc
    (Matthews: GLUE's CoLA)."""
    from sklearn.metrics import f1_score, matthews_corrcoef

    y, p = rec.eval.labels, rec.eval.predictions
    if name == "macro_f1":
        return float(f1_score(y, p, average="macro", labels=sorted(set(y)), zero_division=0))
    if name == "f1":
        return float(f1_score(y, p, pos_label=1, zero_division=0))
    if name == "mcc":
        return float(matthews_corrcoef(y, p))
    return rec.eval.accuracy


def w_unc(window: records.Window) -> float:
    """A window's stated relative uncertainty (its components' errors added)."""
    return sum(c.energy_j * c.uncertainty_rel for c in window.components) / window.energy_j


def device_label(group: list[RunRecord]) -> str:
    """``cpu`` or ``cuda:0 (NVIDIA H100 80GB HBM3)``; several joined when seeds differ."""
    names = sorted({r.device.get("name", "cpu") + (f" ({r.device['model']})" if r.device.get("model") else "")
                    for r in group})
    return ", ".join(names)


def sparsity(rec: RunRecord, by_key: dict[tuple, RunRecord]) -> float | None:
    """The one definition of a pruned row's sparsity (columns.py says it): the share of
    its parent's parameters, all of them, that are zero or removed in it, whatever the
    technique. Unstructured pruning zeroes Linear/Conv weights, structured pruning
    removes rows, heads or layers: one denominator makes them comparable. None where
    the parent's count is not recorded."""
    parent = by_key.get((rec.suite, rec.parent, rec.seed)) or next(
        (r for (suite, vid, _), r in by_key.items() if suite == rec.suite and vid == rec.parent), None)
    if parent is None or not parent.n_params or rec.n_nonzero_params is None:
        return None
    return 1.0 - rec.n_nonzero_params / parent.n_params


def build_table(recs: list[RunRecord]) -> pd.DataFrame:
    by_key = samples.by_seed(recs)  # a parent's first record per seed (repeated runs hold the same model)
    return pd.DataFrame([_row(g, by_key) for g in samples.groups(recs).values()], columns=table_columns())
