"""Records -> every published artefact of a run: tables (md, csv, parquet, tex) and plots.

``joulebench report RUN_DIR [RUN_DIR ...]`` and the end of ``joulebench run`` both come
here. The steps: load records (warning on torn or foreign lines), build the table,
add the lifecycle columns, render, plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness import plots, render
from harness.lifecycle import Carbon, add_lifecycle, carbon_from
from harness.table import CV_WARN, build_table, load_run_dirs

OUTPUTS = ("table.md", "table.csv", "table.parquet", "table.tex", "accuracy_vs_energy.png", "lifecycle_energy.png")


def footnotes(recs: list[dict[str, Any]], table: pd.DataFrame, carbon: Carbon) -> list[str]:
    notes = [f"Energy method: {f}" for f in sorted({f for r in recs for f in r["meter"]["formulas"]})]
    notes.append("accuracy: on the held-out eval split, Wilson 95% CI; delta and McNemar p (exact binomial when "
                 "b+c < 25) vs the parent on the same examples. J/inference: median over windows, distribution-free "
                 "95% CI; net = gross - idle W x window s. correct/J = accuracy / gross J/inference.")
    notes.append("train J: every window spent creating the variant (training, fine-tuning, teacher logits); "
                 "lineage train J adds its ancestors'; J at N queries = lineage train J + N x J/inference; "
                 "break-even = train J / (parent J/inference - J/inference), never if it saves nothing.")
    notes.append(f"Carbon: {carbon.describe()}.")
    notes.append("FLOPs: torch.utils.flop_counter over the eval split; training = 3 x forward FLOPs x examples "
                 "(+ teacher forwards); quantized variants report their parent's FLOPs.")
    for r in recs:
        if r.get("status") == "skipped":
            notes.append(f"skipped {r['variant_id']} (seed {r['seed']}): {r['reason']}")
    for _, row in table.iterrows():
        if row["J_per_inference_cv"] > CV_WARN:
            notes.append(f"WARNING: {row['variant_id']} ({row['task']}): J/inference CV "
                         f"{row['J_per_inference_cv']:.1%} > {CV_WARN:.0%}; the machine was noisy, rerun or lengthen windows.")
    return notes


def _replace(path: Path, write) -> None:
    """Write beside, then rename: an old table is never left half-overwritten."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    tmp.replace(path)


def write(run_dirs: list[Path], out_dir: Path | None = None,
          carbon: Carbon | None = None) -> tuple[pd.DataFrame, str, list[str]]:
    """Build everything from run dirs and write it into ``out_dir`` (default: the single
    run dir; with several and no ``out_dir``, nothing is written). Returns
    (table, markdown, warnings)."""
    carbon = carbon or carbon_from()
    recs, warnings = load_run_dirs(run_dirs)
    table = add_lifecycle(build_table(recs), carbon)
    notes = footnotes(recs, table, carbon)
    md = render.markdown(table, notes)
    target = out_dir or (run_dirs[0] if len(run_dirs) == 1 else None)
    if target is not None and len(table):
        target.mkdir(parents=True, exist_ok=True)
        tex = render.latex(table, notes)
        _replace(target / "table.md", lambda p: p.write_text(md))
        _replace(target / "table.tex", lambda p: p.write_text(tex))
        _replace(target / "table.csv", lambda p: table.to_csv(p, index=False))
        _replace(target / "table.parquet", lambda p: table.to_parquet(p, index=False))
        _replace(target / "accuracy_vs_energy.png", lambda p: plots.accuracy_vs_energy(table, p))
        _replace(target / "lifecycle_energy.png", lambda p: plots.lifecycle_energy(table, p))
    return table, md, warnings
