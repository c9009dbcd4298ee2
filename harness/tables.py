"""The run's other tables: J/inference at every measured batch size (``batches.csv``),
the sweeps and their trials (``sweeps.csv``, ``trials.csv``), and the NVML cross-check's
notes; each from the records, beside the variant table (table.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from harness import stats
from harness.plan import describe
from harness.records import RunRecord
from harness.table import device_label


BATCH_COLUMNS = ["suite", "task", "variant_id", "device", "batch_size", "J_per_inference",
                 "J_per_inference_within_run_ci95_lo", "J_per_inference_within_run_ci95_hi", "J_per_inference_net",
                 "inferences_per_s", "ratio_to_table_batch", "energy_method", "instructions_per_inference"]


def build_batch_table(recs: list[RunRecord]) -> pd.DataFrame:
    """One row per (variant, batch size) where a suite measured several batch sizes
    (``measure.batch_sizes``); empty otherwise. ratio_to_table_batch is the row's median
    J/inference over the variant's at the main table's batch size."""
    ok = [r for r in recs if r.ok and r.inference_sweep]
    groups: dict[tuple[str, str, str], list[RunRecord]] = {}
    for r in ok:
        groups.setdefault((r.suite, r.task, r.variant_id), []).append(r)
    rows = []
    for (suite, task, vid), group in groups.items():
        table_j = stats.median([j for r in group for j in r.inference.j_per_inference()])
        sizes = sorted({inf.batch_size for r in group for inf in r.inferences()})
        for size in sizes:
            infs = [inf for r in group for inf in r.inferences() if inf.batch_size == size]
            per = [j for inf in infs for j in inf.j_per_inference()]
            lo, hi = stats.median_ci(per)
            rows.append({"suite": suite, "task": task, "variant_id": vid, "device": device_label(group),
                         "batch_size": size, "J_per_inference": stats.median(per),
                         "J_per_inference_within_run_ci95_lo": lo, "J_per_inference_within_run_ci95_hi": hi,
                         "J_per_inference_net": stats.median([j for inf in infs for j in inf.j_per_inference(net=True)]),
                         "inferences_per_s": stats.median([x for inf in infs for x in inf.rates()]),
                         "ratio_to_table_batch": stats.median(per) / table_j,
                         "energy_method": "+".join(sorted({w.method for inf in infs for w in inf.windows})),
                         "instructions_per_inference": stats.median(
                             [inf.work.per_inference for inf in infs if inf.work and inf.work.per_inference]
                             or [float("nan")])})
    return pd.DataFrame(rows, columns=BATCH_COLUMNS)


def cross_check_notes(recs: list[RunRecord]) -> list[str]:
    """Per GPU: how NVML's sampled-power integral agreed with its energy counter over the
    same windows (polled / counter, median and range), where a suite asked for it."""
    ratios: dict[str, list[float]] = {}
    for r in (r for r in recs if r.ok):
        for inf in r.inferences():
            for w in inf.windows:
                counter = {c.component: c.energy_j for c in w.components}
                for c in w.cross_check:
                    if counter.get(c.component, 0) > 0:
                        ratios.setdefault(c.component, []).append(c.energy_j / counter[c.component])
    return [f"NVML cross-check, {comp}: polled power integral / energy counter = {stats.median(v):.3f} "
            f"(median; range {min(v):.3f}-{max(v):.3f}) over {len(v)} inference windows; the counter is the figure "
            "used" for comp, v in sorted(ratios.items())]


SWEEP_COLUMNS = ["suite", "task", "model", "method", "select_on", "configurations", "trial_runs", "selected",
                 "selected_params", "val_accuracy_min", "val_accuracy_median", "val_accuracy_max",
                 "selected_val_accuracy", "selected_eval_accuracy", "tuning_J", "tuning_J_all_seeds", "train_J",
                 "tuning_to_train_ratio",
                 "energy_method"]


def build_sweep_table(recs: list[RunRecord], table: pd.DataFrame) -> pd.DataFrame:
    """One row per swept model: the spread of validation accuracy over the configurations
    (each the mean over seeds), the selected one's validation and eval accuracy, and the
    search's energy against the final training's (the row's train J, per seed)."""
    rows = []
    seen: set[tuple[str, str]] = set()
    for r in recs:
        if not r.ok or not r.sweep or (r.suite, r.variant_id) in seen:
            continue
        seen.add((r.suite, r.variant_id))
        sw = r.sweep
        means = list(sw["mean_val_accuracy"].values())
        row = table[(table["suite"] == r.suite) & (table["variant_id"] == r.variant_id)].iloc[0]
        trials = [t for t in recs if t.status == "trial" and t.suite == r.suite and t.model == r.variant_id]
        methods = sorted({w.method for t in trials for w in t.train.windows()}) or [row["energy_method"]]
        rows.append({"suite": r.suite, "task": r.task, "model": r.variant_id, "method": sw["method"],
                     "select_on": sw["select_on"], "configurations": len(means), "trial_runs": len(sw["trials"]),
                     "selected": sw["selected"], "selected_params": describe(sw["params"]),
                     "val_accuracy_min": min(means), "val_accuracy_median": float(np.median(means)),
                     "val_accuracy_max": max(means), "selected_val_accuracy": sw["mean_val_accuracy"][sw["selected"]],
                     "selected_eval_accuracy": row["accuracy"], "tuning_J": sw["tuning_J_per_seed"],
                     "tuning_J_all_seeds": sw["tuning_J"], "train_J": row["train_J"],
                     "tuning_to_train_ratio": sw["tuning_J_per_seed"] / row["train_J"], "energy_method": "+".join(methods)})
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


TRIAL_COLUMNS = ["suite", "task", "model", "trial", "seed", "params", "val_accuracy", "train_J", "curve_eval_J",
                 "energy_J", "train_s", "energy_method", "cached"]


def trial_energy(rec: RunRecord) -> float:
    """A trial's cost to the search: its training windows and its validation passes."""
    return sum(w.energy_j for w in rec.train.windows()) + (rec.curve.eval_j if rec.curve else 0.0)


def build_trial_table(recs: list[RunRecord]) -> pd.DataFrame:
    rows = [{"suite": r.suite, "task": r.task, "model": r.model, "trial": r.variant_id, "seed": r.seed,
             "params": describe(r.params),
             "val_accuracy": r.curve.points[-1].val_accuracy if r.curve and r.curve.points else float("nan"),
             "train_J": sum(w.energy_j for w in r.train.windows()),
             "curve_eval_J": r.curve.eval_j if r.curve else 0.0, "energy_J": trial_energy(r),
             "train_s": sum(w.duration_s for w in r.train.windows()),
             "energy_method": "+".join(sorted({w.provenance for w in r.train.windows()})),
             "cached": bool(r.cached)} for r in recs if r.status == "trial"]
    return pd.DataFrame(rows, columns=TRIAL_COLUMNS)
