"""``joulebench history html``: one self-contained page (no server, no CDN, nothing
fetched, no script but the table's sorting), so it opens offline and straight from a CI
artifact, and stays small (well under 1 MB for a suite's history).

- first, a sortable table of every series' latest night: its verdict per metric
  (J/inference, accuracy and, where counted, the work series), the numbers and their
  change against the baseline, then where and how they were measured;
- per series, J/inference, accuracy (and instructions) by night, as asv draws them: one
  evenly spaced point per night labelled with its date and commit, the meter's stated
  uncertainty as a band around J/inference with the night's within-run 95% interval as
  error bars, the drift-corrected J/inference dotted beside it, the accuracy's 95%
  interval as a band, every step drawn where it starts, and a dotted line where the
  commit changed;
- the energy method (and machine) in every figure's title and axis.

matplotlib draws the figures as inline SVG (text kept as text).
"""

from __future__ import annotations

import html
import json
import math
from datetime import datetime, timezone
from pathlib import Path

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
td.verdict { white-space: normal; min-width: 22em; font-size: 12px; }
span.regression { color: #b00; font-weight: 600; } span.improvement { color: #070; } span.step { color: #a60; }
.figure svg { max-width: 100%; height: auto; }
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


def _verdict(s: Series, metric: str) -> tuple[str, str]:
    """(text, kind) of one metric's latest night: regression, improvement, step(s) seen
    earlier, too few nights, or steady."""
    v = s.verdicts[metric]
    label = METRICS[metric].label
    if v.gate or v.latest_regression:
        return f"{label}: regression {fmt_change(metric, v.new.change if v.new else v.latest_change)}", "regression"
    if v.new is not None:
        return f"{label}: improvement {fmt_change(metric, v.new.change)}", "improvement"
    if v.too_few:
        return f"{label}: too few nights", ""
    if v.steps:
        last = v.steps[-1]
        return (f"{label}: {len(v.steps)} step(s), last {fmt_change(metric, last.change)} at {night(s, last.index)}",
                "step")
    return f"{label}: steady", ""


def _status(s: Series) -> tuple[list[tuple[str, str]], str]:
    """Every metric's verdict, and the row's class (a regression anywhere colours it)."""
    verdicts = [_verdict(s, m) for m in METRICS if m in s.verdicts]
    kinds = {k for _, k in verdicts}
    return verdicts, ("regression" if "regression" in kinds else "improvement" if "improvement" in kinds else "")


def _cell(text: str, sort: object = None, num: bool = False, link: str = "") -> str:
    sort = text if sort is None else sort
    if isinstance(sort, float) and not math.isfinite(sort):
        sort = ""
    cls = ' class="num"' if num else ""
    body = f'<a href="#{link}">{html.escape(text)}</a>' if link else html.escape(text)
    return f'<td{cls} data-sort="{html.escape(str(sort))}">{body}</td>'


def table(series: list[Series], window: int = 7) -> str:
    """The latest night of every series; what a reader needs first (the variant, its
    verdicts, the numbers) to the left, where a 1280 px screen shows it."""
    heads = ["variant", "verdict (latest night)", "J/inference", "change", "accuracy", "change",
             "instructions/inference (work, not energy)", "change", "nights", "latest night (UTC, commit)",
             "suite (profile)", "machine", "energy method"]
    rows = []
    for i, s in enumerate(series):
        last = s.nights.iloc[-1]
        acc, energy = s.verdicts["accuracy"], s.verdicts["J_per_inference"]
        verdicts, cls = _status(s)
        work = s.verdicts.get("instructions_per_inference")
        ipi = float(last["instructions_per_inference"]) if work is not None else math.nan
        said = "; ".join(text for text, _ in verdicts)
        cells = [_cell(s.variant_id, link=f"series-{i}"),
                 '<td class="verdict" data-sort="' + html.escape(said) + '">'
                 + "<br>".join(f'<span class="{k}">{html.escape(t)}</span>' for t, k in verdicts) + "</td>",
                 _cell(fmt_value("J_per_inference", last["J_per_inference"]), float(last["J_per_inference"]), num=True),
                 _cell(fmt_change("J_per_inference", energy.latest_change), energy.latest_change, num=True),
                 _cell(fmt_value("accuracy", last["accuracy"]), float(last["accuracy"]), num=True),
                 _cell(fmt_change("accuracy", acc.latest_change), acc.latest_change, num=True),
                 _cell(fmt_value("instructions_per_inference", ipi), ipi, num=True),
                 _cell(fmt_change("instructions_per_inference", work.latest_change if work else math.nan),
                       work.latest_change if work else math.nan, num=True),
                 _cell(str(len(s.nights)), len(s.nights), num=True),
                 _cell(night(s, -1), str(last["started_at"])),
                 _cell(f"{s.suite} ({s.profile})"), _cell(s.machine_label),
                 _cell(f"{s.meter} ±{100 * float(last['energy_uncertainty']):.2g}%")]
        rows.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    head = "".join(f"<th>{html.escape(h)}</th>" for h in heads)
    # a narrow screen scrolls the table sideways instead of cutting its number columns off
    return (f'<p class="note">baseline: the median of up to {window} nights before the latest, since the '
            "series' last step; a change is the latest night against it.</p>"
            f'<div class="scroll"><table class="sortable" id="latest"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def page(series: list[Series], rules: dict[str, Rule], db: str, n_runs: int) -> str:
    from harness.history.charts import figure

    machines = sorted({s.machine_label for s in series})
    rule_text = ", ".join(f"{METRICS[m].label} {fmt_change(m, r.worse * r.min_effect)}" for m, r in rules.items())
    first = next(iter(rules.values()))
    generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    figures = "".join(f'<div class="figure" id="series-{i}">{figure(s, i)}</div>' for i, s in enumerate(series))
    intro = (f"{n_runs} runs, {len(series)} series on {len(machines)} machine(s). A series is one suite, profile, "
             "variant, machine and energy method; they are never mixed. A step must exceed the minimum effect "
             f"({rule_text}) and {first.spread_factor:g}x the series' own run-to-run spread (more with few nights, "
             "as Student's t widens a normal quantile); a single outlier night "
             "is not a step. A step on the latest night is marked new until the next night confirms it. Energy "
             "bands are the meter's stated uncertainty (systematic: shared by every night of a series), error "
             "bars the night's within-run 95% interval of the median window; accuracy bands are 95% intervals "
             "over the eval examples (and seeds). The figures put one point per night, in order.")
    name = Path(db).name  # never the absolute path of the machine that built the page
    meta = json.dumps({"db": name, "runs": n_runs, "series": len(series), "generated": generated})
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>joulebench history: {html.escape(name)}</title>"
            f"<style>{STYLE}</style></head><body>"
            f"<h1>joulebench history</h1>"
            f"<h2>Latest night of every series</h2>{table(series, first.window)}"
            f"<p class=\"note\">{html.escape(name)}, generated {generated}. {html.escape(intro)}</p>"
            f"<h2>Series</h2>{figures}"
            f"<script type=\"application/json\" id=\"meta\">{html.escape(meta)}</script>"
            f"<script>{SORT_JS}</script></body></html>\n")


def write(series: list[Series], rules: dict[str, Rule], db: str, n_runs: int, out_dir: Path) -> Path:
    out_dir = ensure_dir(Path(out_dir), "dashboard folder")
    text = page(series, rules, db, n_runs)
    path = out_dir / INDEX
    write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))
    return path
