"""The GPU section of results/reference/README.md, computed from each committed
gpu-*/ folder that benchmarks/scripts/gpu_check.sh left (reference_readme.py calls it)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from harness import finished, rundir
from harness.render import fmt


def _share(rec, component: str) -> float:
    """The median share of ``component`` in the record's inference windows' gross energy."""
    shares = [sum(c.energy_j for c in w.components if c.component == component) / w.energy_j
              for w in rec.inference.windows]
    return statistics.median(shares)


def gpu_section(ref: Path) -> list[str]:
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
