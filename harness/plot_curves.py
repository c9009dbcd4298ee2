"""Training curves: validation accuracy against cumulative training joules, per variant,
in the colours of the run's other figures (plots.Style)."""

from __future__ import annotations

import matplotlib.pyplot as plt

from harness.plots import MARKERS, STYLES, Style, log_axis


def _log_x(ax, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def training_curves(recs: list, style: Style) -> plt.Figure:
    """Validation accuracy (the carved split) against cumulative training joules (log x):
    one line per variant (the mean over seeds, point by point), each seed faint, a
    sweep's trials dotted grey. Variants trained from scratch share one panel; variants
    fine-tuned from a trained parent get their own, on their own energy (they start from
    the parent's accuracy, not from nothing), with line styles and markers that keep
    overlapping curves apart. Each variant has its colour of every figure of the run."""
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
    for ax, (task, mine, derived) in zip(axes[0], panels):
        trial_label = "sweep trials"
        for r in (r for r in mine if r.status == "trial"):
            pts = r.curve.points
            ax.plot([p.train_J for p in pts], [p.val_accuracy for p in pts], ":", color="0.6", lw=0.8,
                    label=trial_label)
            trial_label = None
        variants = list(dict.fromkeys(r.variant_id for r in mine if r.status == "ok"))
        for k, vid in enumerate(variants):
            color, line = style.colour(vid), STYLES[k % len(STYLES)]
            group = [r for r in mine if r.status == "ok" and r.variant_id == vid]
            for r in group:
                pts = r.curve.points
                ax.plot([p.train_J for p in pts], [p.val_accuracy for p in pts], line, color=color, lw=0.8,
                        alpha=0.3)
            n = min(len(r.curve.points) for r in group)
            x = [sum(r.curve.points[i].train_J for r in group) / len(group) for i in range(n)]
            y = [sum(r.curve.points[i].val_accuracy for r in group) / len(group) for i in range(n)]
            parent = f", from {group[0].parent}" if derived else ""
            ax.plot(x, y, line, marker=MARKERS[k % len(MARKERS)], color=color, lw=1.6, ms=3.5,
                    label=f"{vid} ({len(group)} seed{'s' * (len(group) > 1)}{parent})")
        methods = "+".join(sorted({w.method for r in mine for w in r.train.windows()}))
        if derived:
            _log_x(ax, f"the variant's own training energy (J, log scale; {methods}; its parent's not included)",
                   "accuracy on the validation split", f"{task}: variants made from a trained parent (fine-tuned, or distilled from it)")
        else:
            _log_x(ax, f"cumulative training energy (J, log scale; {methods}; validation passes excluded)",
                   "accuracy on the validation split carved from training data",
                   f"{task}: accuracy reached per training joule (from scratch)")
        log_axis(ax.xaxis)
    fig.tight_layout()
    return fig
