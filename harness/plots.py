"""PNG figures: accuracy against J per inference (log x) with the Pareto frontier; the
total energy of each variant against the queries it serves (log-log: break-even is
where lines cross); training curves along each variant's lineage.

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

from harness.columns import is_bound  # noqa: E402


def _log_x(ax, xlabel: str, ylabel: str, title: str) -> None:
    """Log x, labels, grid and legend: the frame accuracy-against-joules figures share."""
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


MARKERS = "osD^vP*Xh<>p"
STYLES = ("-", "--", "-.", ":")


def _styles(t: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """variant_id -> (colour, marker): colour by technique (the ``variant`` column),
    marker cycling within a technique, so every variant has its own pair."""
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    techniques = list(dict.fromkeys(t["variant"]))
    seen: dict[str, int] = {}
    out = {}
    for _, r in t.iterrows():
        k = seen.get(r["variant"], 0)
        seen[r["variant"]] = k + 1
        out[r["variant_id"]] = (colors[techniques.index(r["variant"]) % len(colors)], MARKERS[k % len(MARKERS)])
    return out


def _log_ticks(axis) -> None:
    """Log ticks labelled even where the axis spans less than a power of ten."""
    axis.set_major_formatter(matplotlib.ticker.LogFormatterSciNotation(labelOnlyBase=False,
                                                                         minor_thresholds=(1, 0.4)))
    axis.set_minor_formatter(matplotlib.ticker.LogFormatterSciNotation(labelOnlyBase=False,
                                                                         minor_thresholds=(1, 0.4)))


def accuracy_vs_energy(table: pd.DataFrame, path: Path) -> None:
    """Accuracy against J/inference (log x), one point per variant with both 95% CIs;
    colour by technique, marker within it; a legend in place of labels on the points
    (compressed variants cluster around their parent, and labels there overprint)."""
    tasks = list(table["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(8.5 * len(tasks), 4.8), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        t = table[table["task"] == task]
        style = _styles(t)
        front = t[t["pareto"].astype(bool)].sort_values("J_per_inference")
        ax.plot(front["J_per_inference"], front["accuracy"], "-", color="0.3", lw=1.0, zorder=1,
                label="Pareto frontier")
        for _, r in t.iterrows():
            x, y = r["J_per_inference"], r["accuracy"]
            lo, hi = r["J_per_inference_within_run_ci95_lo"], r["J_per_inference_within_run_ci95_hi"]
            xerr = None if pd.isna(lo) else [[x - lo], [hi - x]]
            color, marker = style[r["variant_id"]]
            bound = is_bound(r, "J_per_inference")  # an upper bound: hollow, and said in the legend
            ax.errorbar([x], [y], xerr=xerr, yerr=[[y - r["accuracy_ci95_lo"]], [r["accuracy_ci95_hi"] - y]],
                        fmt=marker, color=color, ecolor=color, elinewidth=0.8, capsize=2, ms=6, zorder=2,
                        mfc="none" if bound else color,
                        label=f"{r['variant_id']} ({r['variant']})" + (" J/inf. ≤ (upper bound)" if bound else ""))
        methods = "; ".join(sorted(set(t["energy_method"])))
        ax.set_xscale("log")
        _log_ticks(ax.xaxis)
        ax.set_xlabel(f"J per inference (J, log scale; energy: {methods})")
        ax.set_ylabel("accuracy on the eval split (fraction)")
        ax.set_title(f"{task}: accuracy against energy per inference (95% CIs; J within the run)", fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="variant (technique)",
                  title_fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png", bbox_inches="tight")  # keep the legend
    plt.close(fig)


def lifecycle_energy(table: pd.DataFrame, path: Path) -> None:
    """Total energy against the number of queries served, log-log, one line per
    variant: lineage creation energy + N x J/inference. Where two lines cross is the
    break-even; the band is the stated uncertainty of the energy method."""
    import numpy as np

    tasks = list(table["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(8.5 * len(tasks), 4.8), squeeze=False)
    n = np.logspace(0, 10, 200)
    for ax, task in zip(axes[0], tasks):
        t = table[table["task"] == task]
        style = _styles(t)
        # one method for every line: its systematic error moves them together, so a band per
        # line would hide the differences the figure is for; it is stated on the axis
        shared_method = t["energy_method"].iloc[0] if t["energy_method"].nunique() == 1 else None
        unknown = [r["variant_id"] for _, r in t.iterrows() if pd.isna(r["lineage_train_J"])]
        if len(unknown) == len(t):  # no line to draw: an unknown creation is never drawn as 0 J
            ax.text(0.5, 0.5, f"{task}: no variant's creation energy is known\n(made outside joulebench, not "
                    "measured): no lifecycle line", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        for k, (_, r) in enumerate(t.iterrows()):
            if r["variant_id"] in unknown:
                continue
            color, _ = style[r["variant_id"]]
            total = r["lineage_train_J"] + n * r["J_per_inference"]
            unc = 0.0 if pd.isna(r["energy_uncertainty"]) else float(r["energy_uncertainty"])
            bound = is_bound(r, "J_at_1e3_queries")  # creation or J/inference an upper bound: so is the line
            ax.plot(n, total, STYLES[k % len(STYLES)], color=color, lw=0.8 if bound else 1.3,
                    label=f"{r['variant_id']} ({r['variant']})" + (" ≤ (upper bound)" if bound else ""))
            if shared_method is None:  # methods differ: each line's own stated uncertainty
                ax.fill_between(n, total * (1 - unc), total * (1 + unc), color=color, alpha=0.08, lw=0)
        methods = "; ".join(f"{m} ±{100 * u:.0f}%" for m, u in
                            sorted(set(zip(t["energy_method"], t["energy_uncertainty"].astype(float).fillna(0)))))
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("queries served (inferences, log scale)")
        ax.set_ylabel(f"total energy (J, log scale; {methods})", fontsize=8)
        ax.set_title(f"{task}: creation (lineage) + queries x J/inference; lines cross at break-even"
                     + ("" if shared_method else "; bands: stated uncertainty")
                     + (f"\nnot drawn (creation energy unknown): {', '.join(unknown)}" if unknown else ""), fontsize=9)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
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
    fig.savefig(path, dpi=120, format="png", bbox_inches="tight")
    plt.close(fig)


def training_curves(recs: list, path: Path) -> None:
    """Validation accuracy (the carved split) against cumulative training joules (log x):
    one line per variant (the mean over seeds, point by point), each seed faint, a
    sweep's trials dotted grey. Variants trained from scratch share one panel; variants
    fine-tuned from a trained parent get their own, on their own energy (they start from
    the parent's accuracy, not from nothing), with line styles and markers that keep
    overlapping curves apart."""
    with_curves = [r for r in recs if r.status in ("ok", "trial") and r.curve is not None and r.curve.points]
    tasks = list(dict.fromkeys(r.task for r in with_curves))
    panels = []
    for task in tasks:
        mine = [r for r in with_curves if r.task == task]
        scratch = [r for r in mine if r.status == "trial" or not r.parent]
        derived = [r for r in mine if r.status == "ok" and r.parent]
        panels.append((task, scratch, False))
        if derived:
            panels.append((task, derived, True))
    fig, axes = plt.subplots(1, len(panels), figsize=(7.0 * len(panels), 5.0), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (task, mine, derived) in zip(axes[0], panels):
        trial_label = "sweep trials"
        for r in (r for r in mine if r.status == "trial"):
            pts = r.curve.points
            ax.plot([p.train_J for p in pts], [p.val_accuracy for p in pts], ":", color="0.6", lw=0.8,
                    label=trial_label)
            trial_label = None
        variants = list(dict.fromkeys(r.variant_id for r in mine if r.status == "ok"))
        for k, vid in enumerate(variants):
            color, style = colors[k % len(colors)], STYLES[k % len(STYLES)]
            group = [r for r in mine if r.status == "ok" and r.variant_id == vid]
            for r in group:
                pts = r.curve.points
                ax.plot([p.train_J for p in pts], [p.val_accuracy for p in pts], style, color=color, lw=0.8,
                        alpha=0.3)
            n = min(len(r.curve.points) for r in group)
            x = [sum(r.curve.points[i].train_J for r in group) / len(group) for i in range(n)]
            y = [sum(r.curve.points[i].val_accuracy for r in group) / len(group) for i in range(n)]
            parent = f", from {group[0].parent}" if derived else ""
            ax.plot(x, y, style, marker=MARKERS[k % len(MARKERS)], color=color, lw=1.6, ms=3.5,
                    label=f"{vid} ({len(group)} seed{'s' * (len(group) > 1)}{parent})")
        methods = "+".join(sorted({w.method for r in mine for w in r.train.windows()}))
        if derived:
            _log_x(ax, f"the variant's own training energy (J, log scale; {methods}; its parent's not included)",
                   "accuracy on the validation split", f"{task}: variants made from a trained parent (fine-tuned, or distilled from it)")
        else:
            _log_x(ax, f"cumulative training energy (J, log scale; {methods}; validation passes excluded)",
                   "accuracy on the validation split carved from training data",
                   f"{task}: accuracy reached per training joule (from scratch)")
        _log_ticks(ax.xaxis)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png", bbox_inches="tight")
    plt.close(fig)
