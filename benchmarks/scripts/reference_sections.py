"""The history, work and GPU sections of results/reference/README.md (reference_readme.py
builds the page): each computed from the committed databases, work_check.py outputs and
gpu-*/ folders that benchmarks/scripts/gpu_check.sh left."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from typing import Any

from harness import finished, rundir, stats
from harness.history import db as history_db, series as series_mod, show
from harness.render import fmt

REF = Path(__file__).resolve().parents[2] / "results" / "reference"
HISTORIES = {"history": "nightly-digits-quick.sqlite", "history-work": "nightly.sqlite"}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _span(values: list[float], pct: bool = True) -> str:
    lo, hi = min(values), max(values)
    f = _pct if pct else fmt
    return f(lo) if f(lo) == f(hi) else f"{f(lo)}-{f(hi)}"


def _signed(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    return f"{100 * lo:+.1f}% to {100 * hi:+.1f}%"


def _nights(db: Path) -> tuple[history_db.History, list[str]]:
    h = history_db.load(db)
    return h, list(h.runs.sort_values(["started_at", "run_id"])["run_id"])


def shows(folder: str) -> dict[int, tuple[str, int]]:
    """``history show`` after each night (the DB cut to its first N nights), as text and exit code."""
    db = REF / folder / HISTORIES[folder]
    h, ids = _nights(db)
    label = f"results/reference/{folder}/{HISTORIES[folder]}"
    rule_set = series_mod.rules()
    out = {}
    for n in range(1, len(ids) + 1):
        points = h.points[h.points["run_id"].isin(ids[:n])]
        lines, code = show.render(series_mod.build(points, rule_set), rule_set, label, n)
        out[n] = ("\n".join(lines) + "\n", code)
    return out


def history_section(folder: str, shown: dict[int, tuple[str, int]]) -> list[str]:
    h, ids = _nights(REF / folder / HISTORIES[folder])
    p = h.points
    night = {rid: i + 1 for i, rid in enumerate(ids)}
    p = p.assign(night=p["run_id"].map(night))
    commits = h.runs.set_index("run_id")["git_commit"]
    changes = [i + 1 for i in range(1, len(ids)) if commits[ids[i]] != commits[ids[i - 1]]]
    lines = [f"- {len(ids)} nights; commits: "
             + ", ".join(f"nights {a}-{b} {str(commits[ids[a - 1]])[:7]}" for a, b in
                         zip([1, *changes], [c - 1 for c in changes] + [len(ids)])) + "."]
    before, after = p[p["night"] <= 6], p[p["night"] >= 7]
    cvs, moved = [], []
    for vid, g in before.groupby("variant_id"):
        v = g["J_per_inference"].astype(float)
        cvs.append(float(v.std(ddof=1) / v.mean()))
        a = after[after["variant_id"] == vid]["J_per_inference"].astype(float)
        if len(a):
            moved.append(float(a.median() / v.median() - 1))
    lines.append(f"- J/inference night-to-night CV over nights 1-6, per variant: {_span(cvs)}; nights 7-10 "
                 f"against 1-6 (medians): {_signed(moved)}.")
    instr = series_mod.from_columns(p, "instructions_per_inference")
    if instr.notna().any():
        p = p.assign(instr=instr)
        icv, imoved = [], []
        for vid, g in p[p["night"] <= 6].groupby("variant_id"):
            v = g["instr"].dropna()
            if len(v) > 1:
                icv.append(float(v.std(ddof=1) / v.mean()))
                a = p[(p["variant_id"] == vid) & (p["night"] >= 7)]["instr"].dropna()
                imoved.append(float(a.median() / v.median() - 1))
        lines.append(f"- Instructions per inference CV over nights 1-6: {_span(icv)}; nights 7-10 against 1-6: "
                     f"{_signed(imoved)}.")
    codes = ", ".join(f"{n}: {code}" for n, (_, code) in shown.items())
    lines.append(f"- `history show` exit code after each night ({codes}); the texts are "
                 "`show-after-nightNN.txt`, made by this script from the database cut to its first N nights.")
    return lines + [""]


def _work_file(path: Path) -> dict[str, Any]:
    """What a work_check.py output holds: its command, its summary lines, the A/A medians
    of instructions per inference and the final (instructions, J) table."""
    lines = path.read_text().splitlines()
    out: dict[str, Any] = {"command": lines[0].lstrip("# "), "said": [], "median": {}, "pairs": {}, "error": {}}
    final = False
    for line in lines:
        parts = line.split()
        if line.startswith(("largest A/A CV", "largest change with a grown heap", "cost:", "cost, whole run:",
                            "largest sample error",
                            "the default sample covers")):
            out["said"].append(line)
        elif line.startswith("variant_id"):
            final = True
        elif len(parts) == 7 and parts[2] == "of" and parts[-1].endswith("%"):  # the sample's error table
            out["error"][parts[0]] = parts[-1]
        elif final and len(parts) == 3:
            out["pairs"][parts[0]] = (float(parts[1]), float(parts[2]))
        elif len(parts) >= 4 and parts[2].endswith("%") and not line.startswith(("variant", "#")):
            out["median"][parts[0]] = float(parts[1])
    return out


def work_section() -> list[str]:
    files = sorted((REF / "work").glob("work_check-*.txt"))
    got = {f.name: _work_file(f) for f in files}
    lines = []
    for name, w in got.items():
        lines.append(f"- `{name}` (`{w['command']}`):")
        lines += [f"  - {said}" for said in w["said"]]
        if w["error"]:
            lines.append("  - the sample against every batch counted, per variant: "
                         + ", ".join(f"`{v}` {e}" for v, e in sorted(w["error"].items())))
        if len(w["pairs"]) >= 3:
            xs, ys = zip(*w["pairs"].values())
            rho, p, how = stats.spearman(xs, ys)
            lines.append(f"  - Spearman rho {rho:.2f} between instructions and J per inference over "
                         f"{len(xs)} variants (p {p:.2g}, {how}; computed here from the file's table)")
    start = REF / "work" / "valgrind_start.txt"  # the floor under the cost: the counting process's start
    if start.is_file():
        said = start.read_text().splitlines()
        lines.append(f"- `valgrind_start.txt` (`{said[0].lstrip('# ')}`): starting the counting process, before "
                     "it counts anything (wall seconds on an idle machine; in a run it overlaps the run's own work "
                     "between windows):")
        lines += [f"  - {line.strip()}" for line in said if line.strip() and not line.startswith("#")]
    return lines + [""]


def _share(rec, component: str) -> float:
    """The median share of ``component`` in the record's inference windows' gross energy."""
    shares = [sum(c.energy_j for c in w.components if c.component == component) / w.energy_j
              for w in rec.inference.windows]
    return statistics.median(shares)


def gpu_section(ref: Path = REF) -> list[str]:
    lines: list[str] = []
    for folder in sorted(ref.glob("gpu-*")):
        probe = json.loads((folder / "nvml_probe.json").read_text())
        run = rundir.read(folder)
        env, fp = run.environment, run.fingerprint
        table = finished.table(run.records, decide=finished.decide_settings([run])).set_index("variant_id", drop=False)
        idle, lw = probe["idle"], probe["loaded_window"]
        periods = ", ".join(f"{p * 1000:.1f}" for p in probe["counter_update_period_s"])
        lines += [f"### `{folder.name}/`", "",
                  f"- {probe['name']}, driver {probe['driver']}, power limit {fmt(probe['power_limit_w'])} W; "
                  f"Python {env.get('python')}, torch {env.get('torch')}, transformers {env.get('transformers')}.",
                  f"- NVML energy counter update period {periods} ms (3 probes); power reading "
                  f"{probe['power_update_period_s'] * 1000:.1f} ms.",
                  f"- Idle with a CUDA context, {idle['seconds']:.0f} s: {idle['counter_w']:.1f} W by the counter, "
                  f"{idle['polled_w']:.1f} W polled every 10 ms.",
                  f"- Loaded window of {lw['seconds']:.0f} s (bf16 8192x8192 matrix products): counter "
                  f"{fmt(lw['counter_j'])} J ({lw['counter_w']:.1f} W), polled {fmt(lw['polled_j'])} J, "
                  f"polled/counter {lw['polled_over_counter']:.4f}, highest polled {lw['max_polled_w']:.1f} W.",
                  f"- The GPU suite (`benchmarks/gpu/sst2.yaml --quick`, sized to the check's budget), meter "
                  f"{fp.get('meter')}: the GPU by NVML's counter, the host CPU and DRAM by the estimate "
                  "(no RAPL counter was readable there). Batch size "
                  + ", ".join(sorted({str(r.inference.batch_size) for r in run.records if r.ok}))
                  + "; per row " + ", ".join(sorted({str(len(r.inference.windows)) for r in run.records if r.ok}))
                  + " windows of at least "
                  + f"{min(w.duration_s for r in run.records if r.ok for w in r.inference.windows):.1f} s.", ""]
        lines += ["| variant | accuracy | J/inference gross | J/inference net | CV | GPU share of window J | "
                  "polled/counter | train J |", "|---|---|---|---|---|---|---|---|"]
        for rec in (r for r in run.records if r.ok):
            row = table.loc[rec.variant_id]
            cross = [x.energy_j / c.energy_j for w in rec.inference.windows
                     for x in w.cross_check or [] for c in w.components if c.component == x.component]
            bound = "≤ " if bool(row["train_J_is_bound"]) else ""
            lines.append(f"| `{rec.variant_id}` | {row['accuracy']:.4f} | {fmt(row['J_per_inference'])} | "
                         f"{fmt(row['J_per_inference_net'])} | {row['J_per_inference_cv'] * 100:.1f}% | "
                         f"{_share(rec, 'gpu0') * 100:.0f}% | "
                         f"{statistics.median(cross):.3f} | {bound}{fmt(row['train_J'])} |")
        skipped = [r for r in run.records if r.status == "skipped"]
        lines += [""] + [f"- Skipped `{r.variant_id}`: {r.reason}" for r in skipped] + [""]
    return lines or ["No GPU check has been committed.", ""]
