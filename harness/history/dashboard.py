"""``joulebench history html``: one self-contained page (no server, no CDN, nothing
fetched), so it opens offline and straight from a CI artifact.

- a sortable table of every series' latest night (click a column heading);
- per series, J/inference and accuracy over time: the meter's stated uncertainty as a
  band around J/inference with the night's within-run 95% interval as error bars, the
  drift-corrected J/inference (series.py) dotted beside it, the accuracy's 95% interval
  as a band, step markers, and the date and commit on hover;
- the energy method (and machine) in every figure's title and axis.

Plotly draws the figures; its JavaScript is inlined once in the page's head.
"""

from __future__ import annotations

import html
import json
import math
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from harness.files import ensure_dir, write_atomic
from harness.history.series import METRICS, Series
from harness.history.show import fmt_change, fmt_value, night
from harness.history.steps import Rule

INDEX = "index.html"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; font-size: 13px; }
th, td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left; white-space: nowrap; }
th { cursor: pointer; background: #f4f4f4; user-select: none; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.regression td { background: #fde2e2; } tr.improvement td { background: #e3f5e1; }
.figure { margin-top: 1.5em; border-top: 1px solid #ccc; }
.note { color: #555; font-size: 13px; max-width: 70em; }
.scroll { overflow-x: auto; max-width: 100%; }
"""

SORT_JS = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, col) {
    th.addEventListener('click', function () {
      var asc = !th.classList.contains('sorted-asc');
      table.querySelectorAll('th').forEach(function (h) { h.classList.remove('sorted-asc', 'sorted-desc'); });
      th.classList.add(asc ? 'sorted-asc' : 'sorted-desc');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = a.cells[col].dataset.sort, y = b.cells[col].dataset.sort;
        var nx = parseFloat(x), ny = parseFloat(y);
        var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
        return asc ? c : -c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
"""


def _status(s: Series) -> tuple[str, str]:
    """(text, row class) of a series' latest night."""
    worse = [METRICS[m].label for m in s.latest_regression]
    if worse:
        return "regression: " + ", ".join(worse), "regression"
    better = [METRICS[m].label for m, v in s.verdicts.items() if v.new is not None and not v.new.regression]
    if better:
        return "improvement: " + ", ".join(better), "improvement"
    if all(v.too_few for v in s.verdicts.values()):
        return "too few nights", ""
    steps = sum(len(v.steps) for v in s.verdicts.values())
    return f"{steps} step(s) earlier" if steps else "steady", ""


def _cell(text: str, sort: object = None, num: bool = False, link: str = "") -> str:
    sort = text if sort is None else sort
    if isinstance(sort, float) and not math.isfinite(sort):
        sort = ""
    cls = ' class="num"' if num else ""
    body = f'<a href="#{link}">{html.escape(text)}</a>' if link else html.escape(text)
    return f'<td{cls} data-sort="{html.escape(str(sort))}">{body}</td>'


def table(series: list[Series], window: int = 7) -> str:
    heads = ["suite", "profile", "variant", "status", "machine", "energy method", "nights",
             "latest night (UTC, commit)", "accuracy", "accuracy change vs baseline", "J/inference",
             "J/inference change vs baseline", "stated uncertainty", "instructions/inference (work, not energy)",
             "instructions change vs baseline"]
    rows = []
    for i, s in enumerate(series):
        last = s.nights.iloc[-1]
        acc, energy = s.verdicts["accuracy"], s.verdicts["J_per_inference"]
        status, cls = _status(s)
        cells = [_cell(s.suite), _cell(s.profile), _cell(s.variant_id, link=f"series-{i}"), _cell(status),
                 _cell(s.machine_label),
                 _cell(s.meter),
                 _cell(str(len(s.nights)), len(s.nights), num=True),
                 _cell(night(s, -1), str(last["started_at"])),
                 _cell(fmt_value("accuracy", last["accuracy"]), float(last["accuracy"]), num=True),
                 _cell(fmt_change("accuracy", acc.latest_change), acc.latest_change, num=True),
                 _cell(fmt_value("J_per_inference", last["J_per_inference"]), float(last["J_per_inference"]), num=True),
                 _cell(fmt_change("J_per_inference", energy.latest_change), energy.latest_change, num=True),
                 _cell(f"±{100 * last['energy_uncertainty']:.2g}%", float(last["energy_uncertainty"]), num=True)]
        work = s.verdicts.get("instructions_per_inference")
        ipi = float(last["instructions_per_inference"]) if work is not None else math.nan
        cells += [_cell(fmt_value("instructions_per_inference", ipi), ipi, num=True),
                  _cell(fmt_change("instructions_per_inference", work.latest_change if work else math.nan),
                        work.latest_change if work else math.nan, num=True)]
        rows.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    # a narrow screen scrolls the table sideways instead of cutting its number columns off
    return (f'<p class="note">baseline: the median of up to {window} nights before the latest, since the '
            "series' last step; a change is the latest night against it.</p>"
            f'<div class="scroll"><table class="sortable" id="latest"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def figure(s: Series, index: int) -> str:
    """One series: J/inference (top) and accuracy (bottom) against the night's date."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    n = s.nights
    x = pd.to_datetime(n["started_at"], utc=True, errors="coerce")
    commits = [night(s, i) for i in range(len(n))]
    unc = float(n["energy_uncertainty"].iloc[-1])
    counted = "instructions_per_inference" in s.verdicts
    rows = 3 if counted else 2
    titles = [f"J/inference, {s.meter} (stated ±{100 * unc:.2g}%: band)",
              "accuracy on the eval split (95% interval: band)"]
    if counted:
        titles.append("instructions per inference (callgrind, one thread): work, not energy")
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=titles)
    j = n["J_per_inference"].astype(float)
    u = n["energy_uncertainty"].astype(float)
    fig.add_trace(go.Scatter(x=x, y=j * (1 + u), mode="lines", line={"width": 0}, hoverinfo="skip",
                             showlegend=False), row=1, col=1)
    fig.add_trace(go.Scatter(x=x, y=j * (1 - u), mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor="rgba(31,119,180,0.15)", hoverinfo="skip",
                             name=f"meter uncertainty ({s.meter})"), row=1, col=1)
    fig.add_trace(go.Scatter(
        x=x, y=j, mode="lines+markers", name="J/inference", line={"color": "#1f77b4"},
        error_y={"type": "data", "symmetric": False, "array": n["J_per_inference_within_run_ci95_hi"] - j,
                 "arrayminus": j - n["J_per_inference_within_run_ci95_lo"], "thickness": 1, "width": 2},
        customdata=list(zip(commits, n["run_id"].str[:8])),
        hovertemplate="%{customdata[0]}<br>%{y:.4g} J/inference<br>run %{customdata[1]}<extra></extra>"),
        row=1, col=1)
    rel = n["j_per_inference_rel"].astype(float)
    if rel.notna().any():
        fig.add_trace(go.Scatter(
            x=x, y=rel, mode="lines+markers", name="J/inference vs the night's other variants (drift divided out)",
            line={"color": "#7f7f7f", "dash": "dot"}, marker={"size": 5}, customdata=commits,
            hovertemplate="%{customdata}<br>%{y:.4g} J/inference, drift-corrected<extra></extra>"), row=1, col=1)
    a = n["accuracy"].astype(float)
    fig.add_trace(go.Scatter(x=x, y=n["accuracy_ci95_hi"], mode="lines", line={"width": 0}, hoverinfo="skip",
                             showlegend=False), row=2, col=1)
    fig.add_trace(go.Scatter(x=x, y=n["accuracy_ci95_lo"], mode="lines", line={"width": 0}, fill="tonexty",
                             fillcolor="rgba(44,160,44,0.15)", hoverinfo="skip", name="accuracy 95% interval"),
                  row=2, col=1)
    fig.add_trace(go.Scatter(x=x, y=a, mode="lines+markers", name="accuracy", line={"color": "#2ca02c"},
                             customdata=commits, hovertemplate="%{customdata}<br>accuracy %{y:.4f}<extra></extra>"),
                  row=2, col=1)
    if counted:
        fig.add_trace(go.Scatter(x=x, y=n["instructions_per_inference"].astype(float), mode="lines+markers",
                                 name="instructions/inference", line={"color": "#9467bd"}, customdata=commits,
                                 hovertemplate="%{customdata}<br>%{y:.6g} instructions/inference<extra></extra>"),
                      row=3, col=1)
        fig.update_yaxes(title_text="instructions/inference", row=3, col=1)
    # where the code changed: a faint line at every night whose commit differs from the night before
    shas = list(n["git_commit"].fillna(""))
    for i in range(1, len(shas)):
        if shas[i] != shas[i - 1]:
            for row in range(1, rows + 1):
                fig.add_vline(x=x.iloc[i], line={"color": "#999", "dash": "dot", "width": 1}, row=row, col=1)
    if any(shas[i] != shas[i - 1] for i in range(1, len(shas))):
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="lines", line={"color": "#999", "dash": "dot"},
                                 name="commit changed"), row=1, col=1)
    for row, metric in ((1, "J_per_inference"), (1, "J_per_inference_rel"), (2, "accuracy"),
                        (3, "instructions_per_inference")):
        if metric not in s.verdicts:
            continue
        verdict = s.verdicts[metric]
        steps = list(verdict.steps) + ([verdict.new] if verdict.new is not None else [])
        for st in steps:
            color = "#d62728" if st.regression else "#2ca02c"
            label = (f"{'new ' if st.new else ''}step {fmt_change(metric, st.change)}"
                     + (" vs rest" if metric == "J_per_inference_rel" else ""))
            fig.add_vline(x=x.iloc[st.index], line={"color": color, "dash": "dash", "width": 1.5}, row=row, col=1)
            fig.add_trace(go.Scatter(x=[x.iloc[st.index]], y=[n[METRICS[metric].column].iloc[st.index]],
                                     mode="markers+text", marker={"symbol": "x", "size": 11, "color": color},
                                     text=[label], textposition="top center", showlegend=False,
                                     hovertemplate=f"{label} at {night(s, st.index)}<extra></extra>"),
                          row=row, col=1)
    fig.update_yaxes(title_text=f"J/inference ({s.meter})", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", row=2, col=1)
    fig.update_layout(title=f"{s.title}: {s.machine_label}, energy method {s.meter}", height=520 + 200 * (rows - 2),
                      margin={"l": 70, "r": 30, "t": 80, "b": 40}, hovermode="closest",
                      legend={"orientation": "h", "y": -0.08})
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=f"series-{index}",
                       config={"displaylogo": False, "responsive": True})


def page(series: list[Series], rules: dict[str, Rule], db: str, n_runs: int) -> str:
    import plotly.offline

    machines = sorted({s.machine_label for s in series})
    rule_text = ", ".join(f"{METRICS[m].label} {fmt_change(m, r.worse * r.min_effect)}" for m, r in rules.items())
    first = next(iter(rules.values()))
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    figures = "".join(f'<div class="figure">{figure(s, i)}</div>' for i, s in enumerate(series))
    intro = (f"{n_runs} runs, {len(series)} series on {len(machines)} machine(s). A series is one suite, profile, "
             "variant, machine and energy method; they are never mixed. A step must exceed the minimum effect "
             f"({rule_text}) and {first.spread_factor:g}x the series' own run-to-run spread (more with few nights, "
             "as Student's t widens a normal quantile); a single outlier night "
             "is not a step. A step on the latest night is marked new until the next night confirms it. Energy "
             "bands are the meter's stated uncertainty (systematic: shared by every night of a series), error "
             "bars the night's within-run 95% interval of the median window; accuracy bands are 95% intervals "
             "over the eval examples (and seeds).")
    name = Path(db).name  # never the absolute path of the machine that built the page
    meta = json.dumps({"db": name, "runs": n_runs, "series": len(series), "generated": generated})
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>joulebench history: {html.escape(name)}</title>"
            f"<style>{STYLE}</style>"
            f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>"
            f"<h1>joulebench history</h1><p class=\"note\">{html.escape(name)}, generated {generated}. "
            f"{html.escape(intro)}</p>"
            f"<h2>Latest night of every series</h2>{table(series, first.window)}"
            f"<h2>Series</h2>{figures}"
            f"<script type=\"application/json\" id=\"meta\">{html.escape(meta)}</script>"
            f"<script>{SORT_JS}</script></body></html>\n")


def write(series: list[Series], rules: dict[str, Rule], db: str, n_runs: int, out_dir: Path) -> Path:
    out_dir = ensure_dir(Path(out_dir), "dashboard folder")
    text = page(series, rules, db, n_runs)
    path = out_dir / INDEX
    write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))
    return path
