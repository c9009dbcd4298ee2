"""The figures of a run, each as PNG and as PDF (vector, for a journal): accuracy against
J per inference (log x) with the Pareto frontier and direct labels; the lifecycle (total
energy against queries served, and where each variant pays back its creation); J per
inference against batch size; training curves (plot_curves.py).

One colour per variant, the same in every figure of a run (``Style``, made once from the
table); the marker says the technique. Error bars are the table's 95% intervals:
accuracy over examples (and seeds: a seeds x examples bootstrap); J/inference within the
run. Labels are placed by adjustText so they do not overprint; log axes label only as
many ticks as fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only; no display on CI
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from harness.columns import is_bound  # noqa: E402
from harness.files import write_atomic  # noqa: E402

MARKERS = "osD^vP*Xh<>p"
STYLES = ("-", "--", "-.", ":")
FORMATS = ("png", "pdf")


def _colours() -> list:
    """28 distinct colours: tab10's, then tab20's light halves, then Dark2's."""
    cmap = plt.get_cmap
    return ([cmap("tab10")(i) for i in range(10)] + [cmap("tab20")(2 * i + 1) for i in range(10)]
            + [cmap("Dark2")(i) for i in range(8)])


@dataclass(frozen=True)
class Style:
    """Each variant's colour and each technique's marker, fixed once for a run."""

    colours: dict[str, tuple]
    markers: dict[str, str]

    @classmethod
    def of(cls, table: pd.DataFrame) -> "Style":
        palette = _colours()
        ids = list(dict.fromkeys(table["variant_id"])) if len(table) else []
        kinds = list(dict.fromkeys(table["variant"])) if len(table) else []
        return cls({v: palette[i % len(palette)] for i, v in enumerate(ids)},
                   {k: MARKERS[i % len(MARKERS)] for i, k in enumerate(kinds)})

    def colour(self, variant_id: str) -> tuple:
        return self.colours.get(variant_id, (0.4, 0.4, 0.4, 1.0))


def log_axis(axis, fmt: str = "{:g}") -> None:
    """A log axis labelled at 1, 2 and 5 times each power of ten where it spans under two
    decades, at the powers alone over more (every other one beyond six), minor ticks
    unlabelled: tick labels that never run into each other."""
    lo, hi = sorted(axis.get_view_interval())
    decades = math.log10(hi / lo) if lo > 0 and hi > 0 else 10
    subs = (1.0, 2.0, 5.0) if decades < 2 else (1.0,)
    axis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=subs, numticks=7 if decades > 6 else 12))
    axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: fmt.format(v)))
    axis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def save(figures: dict[str, plt.Figure], target: Path) -> None:
    """Each figure as ``NAME.png`` and ``NAME.pdf`` (written beside and renamed), then closed."""
    for name, fig in figures.items():
        for fmt in FORMATS:
            write_atomic(target / f"{name}.{fmt}",
                         lambda p, f=fig, k=fmt: f.savefig(p, dpi=150, format=k, bbox_inches="tight",
                                                           # no timestamp: the same figure, the same bytes
                                                           metadata={"CreationDate": None} if k == "pdf" else None))
        plt.close(fig)


def _label(ax, points: list[tuple[float, float, str]]) -> None:
    """Direct labels beside their points, moved apart by adjustText where they collide."""
    if not points:
        return
    from adjustText import adjust_text

    texts = [ax.text(x, y, s, fontsize=6.5, ha="center", va="center") for x, y, s in points]
    adjust_text(texts, x=[p[0] for p in points], y=[p[1] for p in points], ax=ax, ensure_inside_axes=True,
                expand=(1.2, 1.8), force_text=(0.5, 1.0), force_explode=(0.4, 1.2), iter_lim=5000,
                arrowprops={"arrowstyle": "-", "color": "0.55", "lw": 0.5})


def accuracy_vs_energy(table: pd.DataFrame, style: Style) -> plt.Figure:
    """Accuracy against J/inference (log x), one point per variant with both 95% CIs,
    labelled directly; the legend says colour and technique too."""
    tasks = list(table["task"].unique())
    fig, axes = plt.subplots(1, len(tasks), figsize=(10.5 * len(tasks), 6.0), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        t = table[table["task"] == task]
        ax.margins(x=0.08, y=0.12)  # room for the labels around the outermost points
        front = t[t["pareto"].astype(bool)].sort_values("J_per_inference")
        ax.plot(front["J_per_inference"], front["accuracy"], "-", color="0.3", lw=1.0, zorder=1,
                label="Pareto frontier")
        for _, r in t.iterrows():
            x, y = r["J_per_inference"], r["accuracy"]
            lo, hi = r["J_per_inference_within_run_ci95_lo"], r["J_per_inference_within_run_ci95_hi"]
            xerr = None if pd.isna(lo) else [[x - lo], [hi - x]]
            colour = style.colour(r["variant_id"])
            bound = is_bound(r, "J_per_inference")  # an upper bound: hollow, and said in the legend
            ax.errorbar([x], [y], xerr=xerr, yerr=[[y - r["accuracy_ci95_lo"]], [r["accuracy_ci95_hi"] - y]],
                        fmt=style.markers[r["variant"]], color=colour, ecolor=colour, elinewidth=0.8, capsize=2,
                        ms=7, zorder=2, mfc="none" if bound else matplotlib.colors.to_rgba(colour, _fill(r)),
                        label=f"{r['variant_id']} ({r['variant']})" + (" J/inf. ≤ (upper bound)" if bound else "")
                        + (f": {r['verdict'].split(' (')[0]}" if isinstance(r.get("verdict"), str) else ""))
        ax.set_xscale("log")
        ax.set_xlabel(f"J per inference (J, log scale; energy: {'+'.join(sorted(t['energy_method'].unique()))})")
        ax.set_ylabel("accuracy on the eval split (fraction)")
        ax.set_title(f"{task}: accuracy against energy per inference (95% CIs; J within the run;\n"
                     "fill: probability of lying on the frontier, solid 1, faint 0; legend: verdict vs parent)",
                     fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="variant (technique)",
                  title_fontsize=7)
        log_axis(ax.xaxis, "{:.0e}")
        _label(ax, [(r["J_per_inference"], r["accuracy"], r["variant_id"]) for _, r in t.iterrows()])
    fig.tight_layout()
    return fig


def _fill(r: pd.Series) -> float:
    """A point's face opacity: its probability of lying on the frontier (faint, never invisible)."""
    p = r.get("p_frontier")
    return 1.0 if p is None or pd.isna(p) else 0.12 + 0.88 * float(p)


def lifecycle_energy(table: pd.DataFrame, style: Style) -> plt.Figure:
    """Left: total energy (lineage creation + queries x J/inference) against queries
    served, log-log, one line per variant; the band is the stated uncertainty where the
    methods differ. Right: the break-even of each variant against its parent, the number
    of queries after which its saving repays its own creation, or why it has none."""
    import numpy as np

    tasks = list(table["task"].unique())
    fig, axes = plt.subplots(len(tasks), 2, figsize=(15, 5.0 * len(tasks)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.3, 1]})
    n = np.logspace(0, 10, 200)
    for (ax, side), task in zip(axes, tasks):
        t = table[table["task"] == task]
        unknown = [r["variant_id"] for _, r in t.iterrows() if pd.isna(r["lineage_train_J"])]
        # one method for every line: its systematic error moves them together, so a band per
        # line would hide the differences the figure is for; it is stated on the axis
        shared_method = t["energy_method"].nunique() == 1
        for k, (_, r) in enumerate(t.iterrows()):
            if r["variant_id"] in unknown:  # an unknown creation is never drawn as 0 J
                continue
            colour = style.colour(r["variant_id"])
            total = r["lineage_train_J"] + n * r["J_per_inference"]
            unc = 0.0 if pd.isna(r["energy_uncertainty"]) else float(r["energy_uncertainty"])
            bound = is_bound(r, "J_at_1e3_queries")  # creation or J/inference an upper bound: so is the line
            ax.plot(n, total, STYLES[k % len(STYLES)], color=colour, lw=0.8 if bound else 1.3,
                    label=f"{r['variant_id']} ({r['variant']})" + (" ≤ (upper bound)" if bound else ""))
            if not shared_method:  # methods differ: each line's own stated uncertainty
                ax.fill_between(n, total * (1 - unc), total * (1 + unc), color=colour, alpha=0.08, lw=0)
        if len(unknown) == len(t):
            ax.text(0.5, 0.5, f"{task}: no variant's creation energy is known\n(made outside joulebench, not "
                    "measured): no lifecycle line", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
        else:
            methods = "; ".join(f"{m} ±{100 * u:.0f}%" for m, u in
                                sorted(set(zip(t["energy_method"], t["energy_uncertainty"].astype(float).fillna(0)))))
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("queries served (inferences, log scale)")
            ax.set_ylabel(f"total energy (J, log scale; {methods})", fontsize=8)
            ax.set_title(f"{task}: creation (lineage) + queries x J/inference"
                         + ("" if shared_method else "; bands: stated uncertainty")
                         + (f"\nnot drawn (creation energy unknown): {', '.join(unknown)}" if unknown else ""),
                         fontsize=9)
            ax.grid(True, which="major", alpha=0.3)
            ax.legend(fontsize=6.5, loc="upper left", ncol=2)
            log_axis(ax.xaxis, "{:.0e}")
            log_axis(ax.yaxis, "{:.0e}")
        _break_even(side, t, style, task)
    fig.tight_layout()
    return fig


def _break_even(ax, t: pd.DataFrame, style: Style, task: str) -> None:
    """One row per variant with a parent: a point at its break-even (queries, log x),
    or the reason it has none, written where the point would be."""
    rows = [r for _, r in t.iterrows() if isinstance(r.get("parent"), str) and r["parent"]]
    ax.set_title(f"{task}: queries after which a variant's saving per inference repays its own creation "
                 "(vs its parent; line: 95% interval)", fontsize=8)
    if not rows:
        ax.text(0.5, 0.5, "no variant has a parent", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return
    known = [x for r in rows for x in (r["break_even_ci95_lo"], r["break_even_ci95_hi"]) if not pd.isna(x)]
    right = max(known) * 30 if known else 1e6
    left = min(known) / 30 if known else 1.0
    for y, r in enumerate(rows):
        colour = style.colour(r["variant_id"])
        if not pd.isna(r["break_even_inferences"]):
            bound = bool(r.get("train_J_is_bound"))
            ax.plot([r["break_even_ci95_lo"], r["break_even_ci95_hi"]], [y, y], "-", color=colour, lw=1.5, alpha=0.6)
            ax.plot([r["break_even_inferences"]], [y], style.markers[r["variant"]], color=colour, ms=6,
                    mfc="none" if bound else colour)
            ax.annotate(f"{r['break_even_inferences']:.2g}" + (" (≤)" if bound else ""),
                        (r["break_even_inferences"], y), xytext=(6, -3), textcoords="offset points", fontsize=6.5)
            continue
        why = ("no saving per inference (its 95% interval reaches 0)" if r["break_even_status"] == "no saving"
               else "creation energy unknown" if pd.isna(r.get("train_J")) else str(r["break_even_status"]))
        ax.text(left, y, why, fontsize=6.5, va="center", color=colour)
    ax.set_yticks(range(len(rows)), [f"{r['variant_id']}" for r in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xscale("log")
    ax.set_xlim(left, right)
    ax.set_xlabel("break-even (queries served, log scale)")
    ax.grid(True, axis="x", which="major", alpha=0.3)
    log_axis(ax.xaxis, "{:.0e}")


def batch_size_energy(batches: pd.DataFrame, style: Style) -> plt.Figure:
    """J per inference against batch size (log-log), one line per variant, 95% CIs
    within the run as error bars."""
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for (task, vid), t in batches.groupby(["task", "variant_id"], sort=False):
        t = t.sort_values("batch_size")
        yerr = [t["J_per_inference"] - t["J_per_inference_within_run_ci95_lo"],
                t["J_per_inference_within_run_ci95_hi"] - t["J_per_inference"]]
        ax.errorbar(t["batch_size"], t["J_per_inference"], yerr=yerr, fmt="o-", capsize=3, color=style.colour(vid),
                    label=f"{task}:{vid}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("inference batch size (log scale)")
    ax.set_ylabel(f"J per inference (J, log scale; {batches['energy_method'].iloc[0]})")
    ax.set_title(f"Energy per inference against batch size ({batches['device'].iloc[0]})")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    log_axis(ax.yaxis, "{:.0e}")
    fig.tight_layout()
    return fig
