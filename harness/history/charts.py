"""The dashboard's figures: one series by night, drawn by matplotlib as inline SVG (text
kept as text, so a page of a suite's series stays small and searchable).

Nights are evenly spaced points in order, each labelled with its date and commit (asv's
by-commit axis): the wall-clock gaps between nights say nothing about the code. Steps are
drawn where they start (a dashed line and an x, red if worse, green if better, labelled
with the change); a dotted grey line marks every night whose commit differs from the one
before. Elements a test (or a reader's tool) looks for carry ids: ``sN-step-METRIC-I``,
``sN-commit-I``.
"""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")  # files only; no display on CI
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from harness.history.series import METRICS, Series  # noqa: E402
from harness.history.show import fmt_change, night  # noqa: E402

BLUE, GREEN, PURPLE, RED, GOOD = "#1f77b4", "#2ca02c", "#9467bd", "#d62728", "#2ca02c"
#: the most night labels on the axis; beyond, every k-th night (always the latest)
MAX_LABELS = 12


def _label(s: Series, i: int) -> str:
    """``MM-DD HH:MM`` over the short commit of night ``i``."""
    text = night(s, i)  # "YYYY-MM-DD HH:MM sha"
    parts = text.split(" ")
    return f"{parts[0][5:]} {parts[1]}\n{' '.join(parts[2:])}" if len(parts) >= 3 else text


def _ticks(ax, s: Series) -> None:
    n = len(s.nights)
    step = max(1, math.ceil(n / MAX_LABELS))
    at = sorted(range(n - 1, -1, -step))
    ax.set_xticks(at, [_label(s, i) for i in at], fontsize=7)
    ax.set_xlim(-0.5, n - 0.5)
    ax.set_xlabel("night (oldest to latest; date, UTC time and commit)", fontsize=8)


def figure(s: Series, index: int = 0) -> str:
    """J/inference, accuracy and, where counted, instructions per inference by night."""
    n = s.nights
    x = np.arange(len(n))
    counted = "instructions_per_inference" in s.verdicts
    rows = 3 if counted else 2
    fig, axes = plt.subplots(rows, 1, figsize=(11, 2.5 * rows + 0.8), sharex=True, squeeze=False)
    axes = axes[:, 0]
    j = n["J_per_inference"].astype(float).to_numpy()
    u = n["energy_uncertainty"].astype(float).fillna(0).to_numpy()
    lo = n["J_per_inference_within_run_ci95_lo"].astype(float).to_numpy()
    hi = n["J_per_inference_within_run_ci95_hi"].astype(float).to_numpy()
    ax = axes[0]
    ax.fill_between(x, j * (1 - u), j * (1 + u), color=BLUE, alpha=0.12, lw=0,
                    label=f"meter's stated uncertainty ({s.meter})")
    ax.errorbar(x, j, yerr=[np.nan_to_num(j - lo), np.nan_to_num(hi - j)], fmt="o-", color=BLUE, ms=3, lw=1.2,
                capsize=2, elinewidth=0.8, label="J/inference (within-run 95% interval)")
    rel = n["j_per_inference_rel"].astype(float)
    if rel.notna().any():
        ax.plot(x, rel, ":", marker=".", color="0.45", lw=1, label="vs the night's other variants (drift divided out)")
    ax.set_ylabel(f"J/inference ({s.meter})", fontsize=8)
    ax.set_title(f"J/inference, {s.meter} (stated ±{100 * u[-1]:.2g}%: band)", fontsize=9, loc="left")
    ax = axes[1]
    ax.fill_between(x, n["accuracy_ci95_lo"].astype(float), n["accuracy_ci95_hi"].astype(float), color=GREEN,
                    alpha=0.15, lw=0, label="95% interval")
    ax.plot(x, n["accuracy"].astype(float), "o-", color=GREEN, ms=3, lw=1.2, label="accuracy")
    ax.set_ylabel("accuracy", fontsize=8)
    ax.set_title("accuracy on the eval split (95% interval: band)", fontsize=9, loc="left")
    if counted:
        axes[2].plot(x, n["instructions_per_inference"].astype(float), "o-", color=PURPLE, ms=3, lw=1.2,
                     label="instructions/inference")
        axes[2].set_ylabel("instructions/inference", fontsize=8)
        axes[2].set_title("instructions per inference (callgrind, one thread): work, not energy", fontsize=9,
                          loc="left")
    shas = list(n["git_commit"].fillna(""))
    changed = [i for i in range(1, len(shas)) if shas[i] != shas[i - 1]]
    for i in changed:
        for k, a in enumerate(axes):
            line = a.axvline(i, color="#999", ls=":", lw=1, label="commit changed" if k == 0 and i == changed[0] else None)
            line.set_gid(f"s{index}-commit-{i}-{k}")
    panels = {"J_per_inference": 0, "J_per_inference_rel": 0, "accuracy": 1, "instructions_per_inference": 2}
    for metric, row in panels.items():
        verdict = s.verdicts.get(metric)
        if verdict is None:
            continue
        for st in list(verdict.steps) + ([verdict.new] if verdict.new is not None else []):
            colour = RED if st.regression else GOOD
            text = (f"{'new ' if st.new else ''}step {fmt_change(metric, st.change)}"
                    + (" vs rest" if metric == "J_per_inference_rel" else ""))
            a = axes[row]
            a.axvline(st.index, color=colour, ls="--", lw=1.5).set_gid(f"s{index}-step-{metric}-{st.index}")
            y = float(n[METRICS[metric].column].iloc[st.index])
            a.plot([st.index], [y], "x", color=colour, ms=9, mew=2)
            a.annotate(text, (st.index, y), xytext=(4, 6), textcoords="offset points", fontsize=7, color=colour)
    for a in axes:
        a.margins(y=0.18)  # room above the highest point for a step's label
        a.grid(True, alpha=0.3)
        a.tick_params(labelsize=7)
        a.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _ticks(axes[-1], s)
    fig.suptitle(f"{s.title}: {s.machine_label}, energy method {s.meter}", fontsize=10, x=0.01, ha="left")
    fig.tight_layout()
    buf = io.StringIO()
    with plt.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"series{index}"}):
        fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]
