"""PNG figures: accuracy against J per inference (log x) with the Pareto frontier, and
each variant's creation energy beside the energy of 1M inferences.

Error bars are the table's 95% intervals: accuracy over examples (and seeds, when there
are several: a seeds x examples bootstrap); J/inference within the run.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only; no display on CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402


def _log_x(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Log x, labels, grid and legend: the frame accuracy-against-joules figures share."""
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def accuracy_vs_energy(table: pd.DataFrame, path: Path) -> None:
    tasks = list(table["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(8.0 * len(tasks), 4.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        t = table[table["task"] == task]
        x = t["J_per_inference"]
        xerr = [x - t["J_per_inference_within_run_ci95_lo"], t["J_per_inference_within_run_ci95_hi"] - x]
        yerr = [t["accuracy"] - t["accuracy_ci95_lo"], t["accuracy_ci95_hi"] - t["accuracy"]]
        ax.errorbar(x, t["accuracy"], xerr=xerr, yerr=yerr, fmt="o", color="tab:blue", ecolor="0.6", capsize=3,
                    label="variant (95% CIs; J/inference within run)")
        front = t[t["pareto"]].sort_values("J_per_inference")
        ax.plot(front["J_per_inference"], front["accuracy"], "-", color="tab:red", lw=1.5, label="Pareto frontier")
        ax.scatter(front["J_per_inference"], front["accuracy"], s=90, facecolors="none", edgecolors="tab:red")
        # Labels in a column right of the axes, in the order of the points' accuracy, each
        # tied to its point by a thin line: compressed variants cluster around their parent,
        # and labels placed beside the points would print over one another.
        ranked = t.sort_values(["accuracy", "J_per_inference"])
        for k, (_, r) in enumerate(ranked.iterrows()):
            ax.annotate(r["variant_id"], xy=(r["J_per_inference"], r["accuracy"]), xycoords="data",
                        xytext=(1.03, (k + 0.5) / len(ranked)), textcoords="axes fraction", fontsize=7,
                        va="center", arrowprops={"arrowstyle": "-", "color": "0.75", "lw": 0.6, "shrinkB": 4})
        _log_x(ax, f"J per inference (J, log scale; {'; '.join(sorted(set(t['energy_method'])))})",
               "accuracy on the eval split (fraction)", f"{task}: accuracy vs energy per inference")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png", bbox_inches="tight")  # keep the label column
    plt.close(fig)


def lifecycle_energy(table: pd.DataFrame, path: Path, queries: float = 1e6) -> None:
    """Per variant, two bars side by side on a log axis (stacked bars on a log axis would
    misstate the shares): its creation energy (lineage train J) and the energy of
    ``queries`` inferences, each with the stated uncertainty of its method as error bars;
    the methods are named on the axis."""
    import numpy as np

    t = table.sort_values(["task", "variant_id"])
    one_task = t["task"].nunique() == 1
    labels = [r["variant_id"] if one_task else f"{r['task']}:{r['variant_id']}" for _, r in t.iterrows()]
    unc = t["energy_uncertainty"].astype(float).fillna(0.0)
    pos = np.arange(len(t))
    fig, ax = plt.subplots(figsize=(max(6.0, 0.6 * len(t) + 2.5), 4.8))
    creation, use = t["lineage_train_J"].to_numpy(float), queries * t["J_per_inference"].to_numpy(float)
    ax.bar(pos - 0.2, creation, width=0.4, color="tab:orange", label="creation (lineage train J)",
           yerr=creation * unc.to_numpy(), ecolor="0.4", capsize=2)
    ax.bar(pos + 0.2, use, width=0.4, color="tab:blue", label=f"{queries:.0e} inferences",
           yerr=use * unc.to_numpy(), ecolor="0.4", capsize=2)
    ax.set_xticks(pos, labels, rotation=60, ha="right", fontsize=7)
    ax.set_yscale("log")
    methods = "; ".join(sorted(set(t["energy_method"])))
    ax.set_ylabel(f"energy (J, log scale; {methods})", fontsize=8)
    ax.set_title(f"{t['task'].iloc[0] + ': ' if one_task else ''}creation energy beside {queries:.0e} inferences"
                 " (error bars: stated uncertainty)", fontsize=9)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png", bbox_inches="tight")
    plt.close(fig)


def batch_size_energy(batches: pd.DataFrame, path: Path) -> None:
    """J per inference against batch size (log-log), one line per variant, 95% CIs
    within the run as error bars."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for (task, vid), t in batches.groupby(["task", "variant_id"], sort=False):
        t = t.sort_values("batch_size")
        yerr = [t["J_per_inference"] - t["J_per_inference_within_run_ci95_lo"],
                t["J_per_inference_within_run_ci95_hi"] - t["J_per_inference"]]
        ax.errorbar(t["batch_size"], t["J_per_inference"], yerr=yerr, fmt="o-", capsize=3, label=f"{task}:{vid}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("inference batch size (log scale)")
    ax.set_ylabel(f"J per inference (J, log scale; {batches['energy_method'].iloc[0]})")
    ax.set_title(f"Energy per inference against batch size ({batches['device'].iloc[0]})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


def training_curves(recs: list, path: Path) -> None:
    """Validation accuracy (the carved split) against cumulative training joules (log x):
    one line per variant (the mean over seeds, point by point), each seed faint, a
    sweep's trials dotted grey."""
    with_curves = [r for r in recs if r.status in ("ok", "trial") and r.curve is not None and r.curve.points]
    tasks = list(dict.fromkeys(r.task for r in with_curves))
    fig, axes = plt.subplots(1, len(tasks), figsize=(8.0 * len(tasks), 5.0), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, task in zip(axes[0], tasks):
        mine = [r for r in with_curves if r.task == task]
        trial_label = "sweep trials"
        for r in (r for r in mine if r.status == "trial"):
            pts = r.curve.points
            ax.plot([p.train_J for p in pts], [p.val_accuracy for p in pts], ":", color="0.6", lw=0.8,
                    label=trial_label)
            trial_label = None
        variants = list(dict.fromkeys(r.variant_id for r in mine if r.status == "ok"))
        for k, vid in enumerate(variants):
            color = colors[k % len(colors)]
            group = [r for r in mine if r.status == "ok" and r.variant_id == vid]
            for r in group:
                pts = r.curve.points
                ax.plot([p.train_J for p in pts], [p.val_accuracy for p in pts], "-", color=color, lw=0.8, alpha=0.3)
            n = min(len(r.curve.points) for r in group)
            x = [sum(r.curve.points[i].train_J for r in group) / len(group) for i in range(n)]
            y = [sum(r.curve.points[i].val_accuracy for r in group) / len(group) for i in range(n)]
            ax.plot(x, y, "o-", color=color, lw=1.8, ms=3, label=f"{vid} ({len(group)} seed{'s' * (len(group) > 1)})")
        methods = "+".join(sorted({w.method for r in mine for w in r.train.windows()}))
        _log_x(ax, f"cumulative training energy (J, log scale; {methods}; validation passes excluded)",
               "accuracy on the validation split carved from training data",
               f"{task}: accuracy reached per training joule")
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)
