"""Write results/reference/README.md and the history folders' show-after-nightNN.txt
from the committed records: every figure in them is computed here, none typed.

    python benchmarks/scripts/reference_readme.py            # write
    python benchmarks/scripts/reference_readme.py --check    # exit 1 if a committed file differs

The prose around the figures says what was run and how to read it; a figure that the
records cannot give (a check script's findings) is pointed to in its committed output.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))  # reference_sections beside this file, however this is loaded

from harness import comparable, finished, rundir  # noqa: E402
from harness.history import series as series_mod  # noqa: E402
from harness.plan import describe  # noqa: E402
from harness.render import fmt  # noqa: E402
from reference_sections import (HISTORIES, REF, _nights, _span, gpu_section, history_section,  # noqa: E402
                                shows, work_section)

RUNS = {"digits": "digits", "sst2": "sst2", "sst2_sweep": "sst2_sweep"}


def _windows(run: rundir.RunDir) -> dict[str, list[Any]]:
    """Every window of the run by kind."""
    out: dict[str, list[Any]] = {"inference": [], "training": [], "creation (other than training)": [],
                                 "validation passes": []}
    for r in run.records:
        if r.inference is not None:
            out["inference"] += [w for inf in r.inferences() for w in inf.windows]
        if r.train is not None:
            if r.train.window is not None:
                out["training"].append(r.train.window)
            out["creation (other than training)"] += list(r.train.extra_windows.values())
        if r.curve is not None:
            out["validation passes"] += list(r.curve.eval_windows)
    return out


def _cpu_w(w: Any) -> float:
    seconds = w.work_s if (w.work_s and not w.below_resolution) else w.duration_s
    return sum(c.energy_j for c in w.components if c.component.startswith("cpu")) / seconds


def _wall(run: rundir.RunDir) -> float:
    """Seconds from the run's first record's start to its last record's end."""
    starts = [datetime.fromisoformat(r.started_at) for r in run.records if r.started_at]
    ends = [datetime.fromisoformat(r.finished_at) for r in run.records if r.finished_at]
    return (max(ends) - min(starts)).total_seconds()


def run_section(name: str) -> list[str]:
    run = rundir.read(REF / name)
    table = _table(name)
    env, fp = run.environment, run.fingerprint
    wall, label = _wall(run), comparable.machine_key(fp)[1]
    cores = fp.get("logical_cpus") or 1
    lines = [f"### `{name}/`", "",
             f"- Ran `{' '.join(env.get('command') or [])}` at commit {str(fp.get('git_commit'))[:7]}"
             f"{' (dirty)' if fp.get('git_dirty') else ''}, measuring code {str(fp.get('measure_code'))[:12]}, on "
             f"{label}, in {int(wall // 60)}m{int(wall % 60):02d}s: {len(table)} rows, "
             f"{len({r.seed for r in run.records})} seed(s), meter {fp.get('meter')}."]
    kinds = _windows(run)
    parts = []
    for kind, ws in kinds.items():
        if not ws:
            continue
        bounded = sum(w.below_resolution for w in ws)
        resolved = [_cpu_w(w) for w in ws if not w.below_resolution]
        top = f", the highest resolved CPU power {fmt(max(resolved))} W" if resolved else ""
        parts.append(f"{kind} {len(ws)} ({bounded} bounded{top})")
    lines.append(f"- Windows: {'; '.join(parts)}. The CPU can draw at most {cores} x 12 W = {12 * cores} W; "
                 "a window that read more, or that cannot be told from idle, is kept as an upper bound.")
    cv = table["J_per_inference_cv"].dropna().astype(float).tolist()
    if cv:
        lines.append(f"- J/inference CV over each row's windows: {_span(cv)}.")
    bound = [v for v in table.index if bool(table.loc[v, "train_J_is_bound"])]
    if bound:
        shown = ", ".join(f"`{v}` <= {fmt(table.loc[v, 'train_J'])} J" for v in bound)
        lines.append(f"- Creation figures that are upper bounds (work shorter than the meter resolves): {shown}.")
    ns = [v for v in table.index if table.loc[v, "break_even_status"] == "no saving"]
    if ns:
        shown = ", ".join(f"`{v}`" for v in ns)
        lines.append(f"- No break-even (the 95% interval of the saving per inference reaches 0): {shown}.")
    verdicts: dict[str, list[str]] = {}
    for v in table.index:
        if isinstance(table.loc[v, "verdict"], str):
            verdicts.setdefault(table.loc[v, "verdict"].split(" (")[0], []).append(f"`{v}`")
    if verdicts:
        lines.append("- Verdicts against the parent (decide defaults: docs/statistics.md): "
                     + "; ".join(f"{k}: {', '.join(vs)}" for k, vs in sorted(verdicts.items())) + ".")
    compiled = [r for r in run.records if r.ok and r.variant_id.endswith(".compiled") and r.train is not None]
    if compiled:
        per_seed = ", ".join(f"seed {r.seed} {fmt(sum(w.energy_j for w in r.train.windows()))} J"
                             for r in sorted(compiled, key=lambda r: (r.variant_id, r.seed)))
        lines.append(f"- Compile creation, cold in every seed: {per_seed}.")
    carved = next((r.data.get("validation") for r in run.records if r.data.get("validation")), None)
    if carved:
        lines.append(f"- Validation split: {carved['n']:,} examples carved out of the training split "
                     f"({carved['n'] + carved['n_train_left']:,} rows), never trained on.")
    swept = [r for r in run.records if r.ok and r.sweep]
    if swept:
        sw = swept[0].sweep
        row = table.loc[swept[0].variant_id]
        lines.append(f"- Sweep: {len(sw['trials'])} trials; selected `{sw['selected']}` ({describe(sw['params'])}, mean "
                     f"validation accuracy {sw['mean_val_accuracy'][sw['selected']]:.3f}); eval accuracy "
                     f"{row['accuracy']:.4f}; tuning J {fmt(row['tuning_J'])} per seed, "
                     f"{row['tuning_J'] / row['train_J']:.1f}x the final training's {fmt(row['train_J'])} J.")
    return lines + [""]


@functools.lru_cache(maxsize=None)
def _table(name: str) -> pd.DataFrame:
    run = rundir.read(REF / name)
    table = finished.table(run.records, decide=finished.decide_settings([run]))
    return table.set_index("variant_id", drop=False)


def runtimes_block() -> list[str]:
    """The SST-2 reference's runtime and quantized rows against BERT-tiny eager (one run)."""
    t = _table("sst2")
    parent = t.loc["bert_tiny"]
    lines = ["| row (vs bert_tiny, eager) | J/inference ratio [rows' 95% intervals] | accuracy (delta, McNemar p) | "
             "creation |", "|---|---|---|---|"]
    for vid in [v for v in t.index if v.startswith("bert_tiny.") and (t.loc[v, "runtime"] != "eager"
                                                                      or t.loc[v, "variant"] == "quantize")]:
        r = t.loc[vid]
        ratio = r["J_per_inference"] / parent["J_per_inference"]
        lo = r["J_per_inference_within_run_ci95_lo"] / parent["J_per_inference_within_run_ci95_hi"]
        hi = r["J_per_inference_within_run_ci95_hi"] / parent["J_per_inference_within_run_ci95_lo"]
        creation = "unknown" if pd.isna(r["train_J"]) else (("≤ " if bool(r["train_J_is_bound"]) else "")
                                                             + f"{fmt(r['train_J'])} J, {fmt(r['train_s'])} s")
        lines.append(f"| `{vid}` ({r['runtime']}, {r['params_desc']}) | {ratio:.2f} [{lo:.2f}, {hi:.2f}] | "
                     f"{r['accuracy']:.4f} ({r['accuracy_delta_vs_parent']:+.4f}, p={fmt(r['delta_p'])}) | "
                     f"{creation} |")
    return lines


def sweep_block() -> list[str]:
    t = _table("sst2_sweep")
    run = rundir.read(REF / "sst2_sweep")
    rec = next(r for r in run.records if r.ok and r.sweep)
    sw, row = rec.sweep, t.loc[rec.variant_id]
    vals = sorted(sw["mean_val_accuracy"].values())
    child = [v for v in t.index if t.loc[v, "parent"] == rec.variant_id]
    return [f"The grid of {len(sw['trials'])} configurations ({', '.join(f'{k} {v}' for k, v in sw['space'].items())}) "
            f"cost **{fmt(row['tuning_J'])} J**, **{row['tuning_J'] / row['train_J']:.1f}x** the {fmt(row['train_J'])} J "
            f"of training the selected configuration ({describe(sw['params'])}) once. Validation accuracy over the grid: min "
            f"{vals[0]:.3f} / median {float(np.median(vals)):.3f} / max {vals[-1]:.3f}; the selected model scores "
            f"{row['accuracy']:.4f} on the eval split. The search's trials include their validation passes. "
            + (f"Its `{child[0]}` variant's lineage train J is {fmt(t.loc[child[0], 'lineage_train_J'])} J: it pays "
               "for the search, not just for one training. " if child else "")
            + f"One run (commit {str(run.fingerprint.get('git_commit'))[:7]}); the VM's drift applies to each trial's "
            "joules."]


def history_spread_block() -> list[str]:
    h, ids = _nights(REF / "history" / HISTORIES["history"])
    p = h.points.assign(night=h.points["run_id"].map({rid: i + 1 for i, rid in enumerate(ids)}))
    p = p.assign(rel=series_mod.drift_corrected(p))
    base = p[p["night"] <= 6]
    raw = [float(g.std(ddof=1) / g.mean()) for _, g in base.groupby("variant_id")["J_per_inference"]]
    rel = [float(g.dropna().std(ddof=1) / g.dropna().mean()) for _, g in base.groupby("variant_id")["rel"]
           if g.notna().sum() > 1]
    return [f"  On the ten real nights of quick digits in `results/reference/history/` (nights 1-6, before the plant) "
            f"this narrowed the spread: CV {_span(rel)} against {_span(raw)} raw."]


EXCERPT = ["suite", "task", "variant_id", "variant", "accuracy", "accuracy_delta_vs_parent", "J_per_inference",
           "correct_per_J", "train_J", "break_even_inferences", "verdict"]


def excerpt_block() -> list[str]:
    """The README's excerpt: what ``joulebench report results/reference/digits --columns ...``
    prints, its table lines."""
    import tempfile

    from harness import report

    with tempfile.TemporaryDirectory() as tmp:
        _, md, _ = report.write([REF / "digits"], Path(tmp), select=EXCERPT)
    return [f"`joulebench report results/reference/digits --columns {','.join(EXCERPT)} --out DIR` prints:", ""] + [
        line for line in md.splitlines() if line.startswith("|")]


def durations_block() -> list[str]:
    """How long each committed reference took, from its records."""
    out = []
    for name in RUNS:
        run = rundir.read(REF / name)
        wall, label = _wall(run), comparable.machine_key(run.fingerprint)[1]
        out.append(f"- `{' '.join(run.environment.get('command') or [])}`: {int(wall // 60)}m{int(wall % 60):02d}s "
                   f"on {label}")
    return out


BLOCKS = {"excerpt": excerpt_block, "durations": durations_block, "runtimes": runtimes_block, "sweep": sweep_block, "history-spread": history_spread_block}
BLOCK = re.compile(r"(<!-- figures:([\w-]+) -->\n).*?(<!-- /figures -->)", re.S)


def build() -> dict[Path, str]:
    files: dict[Path, str] = {}
    template = (Path(__file__).with_name("reference_readme.md")).read_text()
    sections = {f"runs:{name}": "\n".join(run_section(name)) for name in RUNS}
    sections["work"] = "\n".join(work_section())
    sections["gpu"] = "\n".join(gpu_section(REF))
    for folder in HISTORIES:
        shown = shows(folder)
        for n, (text, code) in shown.items():
            files[REF / folder / f"show-after-night{n:02d}.txt"] = text + f"\n(exit {code})\n"
        sections[f"history:{folder}"] = "\n".join(history_section(folder, shown))
    text = template
    for key, value in sections.items():
        text = text.replace("{{" + key + "}}", value.rstrip() + "\n")
    files[REF / "README.md"] = text
    blocks = {name: "\n".join(make()) + "\n" for name, make in BLOCKS.items()}
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        old = doc.read_text()
        new = BLOCK.sub(lambda m: m.group(1) + blocks[m.group(2)] + m.group(3), old)
        if new != old or BLOCK.search(old):
            files[doc] = new
    return files


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if a committed file differs from what is computed")
    args = ap.parse_args()
    stale = []
    for path, text in build().items():
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text)
    if stale:
        print("stale (run benchmarks/scripts/reference_readme.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
