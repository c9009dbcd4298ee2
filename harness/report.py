"""Records -> every published artefact of a run: tables (md, csv, parquet, tex) and plots.

``joulebench report RUN_DIR [RUN_DIR ...]`` and the end of ``joulebench run`` both come
here. The steps: load records (warning on torn or foreign lines), build the table,
add the lifecycle columns, render, plot.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness import plots, render
from harness.files import ensure_dir, write_atomic
from harness.lifecycle import Carbon, add_lifecycle, carbon_from
from harness.records import RunRecord
from harness.table import CV_WARN, build_batch_table, build_table, cross_check_notes, load_run_dirs

OUTPUTS = ("table.md", "table.csv", "table.parquet", "table.tex", "accuracy_vs_energy.png", "lifecycle_energy.png")


def footnotes(recs: list[RunRecord], table: pd.DataFrame, carbon: Carbon) -> list[str]:
    notes = [f"Energy method: {f}" for f in sorted({f for r in recs for f in r.meter.get("formulas", [])})]
    notes.append("accuracy: on the held-out eval split. 95% CI: Wilson over examples with one seed; with several, a "
                 "bootstrap resampling seeds and examples together (3 seeds x 450 examples are not 1,350 independent "
                 "trials). Delta vs the parent on the same examples: McNemar (exact binomial when b+c < 25) with one "
                 "seed, a paired seeds x examples bootstrap with several; p not adjusted for multiplicity.")
    notes.append("J/inference: median over windows; its 95% CI (order statistics) is WITHIN RUN: the windows of "
                 "one run share its machine state, so the interval does not cover run-to-run drift (compare "
                 "repeated runs for that). net = gross - idle W x window s. correct/J = accuracy / gross J/inference.")
    mixed = sorted({m for m in table["energy_method"] if m.startswith("train: ")})
    if mixed:
        notes.append("energy method 'train: A; inference: B': creation energy was measured by another method or on "
                     "another host than inference (reused from the artifact cache); the two are not comparable as "
                     "one measurement. idle W is always this run's own.")
    notes.append("train J: every window spent creating the variant (training, fine-tuning, teacher logits); "
                 "lineage train J adds its ancestors'; J at N queries = lineage train J + N x J/inference; "
                 "break-even = train J / (parent J/inference - J/inference), never if it saves nothing.")
    notes.append("energy uncertainty: the median over inference windows of the stated (systematic) error, "
                 "components added; NVML's +-5 W is a different fraction of each window's energy.")
    notes += cross_check_notes(recs)
    notes.append(f"Carbon: {carbon.describe()}.")
    notes.append("FLOPs: torch.utils.flop_counter over the eval split; training = 3 x forward FLOPs x examples "
                 "(+ teacher forwards); quantized variants and rows under another runtime report their parent's FLOPs.")
    used = sorted({r.runtime.get("name", "eager") for r in recs if r.ok} - {"eager"})
    if used:
        notes.append("runtime: how the row was evaluated and measured (eager PyTorch unless named). Accuracy is "
                     "evaluated under the runtime, so its delta vs the parent (same module, eager) is the runtime's "
                     "own effect. onnxruntime: the module exported to ONNX and run on the CPU execution provider; "
                     "int8 there is onnxruntime's quantize_dynamic; size = the .onnx file; FLOPs are counted on the "
                     "PyTorch module that was exported. compile: torch.compile (inductor); train J includes the cold "
                     "compile and its warm-up over every measured batch shape.")
    for _, row in table.iterrows():
        if pd.notna(row["compiles_in_windows"]) and row["compiles_in_windows"] > 0:
            notes.append(f"WARNING: {row['variant_id']} ({row['task']}): {int(row['compiles_in_windows'])} graph(s) "
                         "were compiled inside measured windows; its J/inference includes compilation.")
    for r in recs:
        if r.status == "skipped":
            notes.append(f"skipped {r.variant_id} (seed {r.seed}): {r.reason}")
    for _, row in table.iterrows():
        if row["J_per_inference_cv"] > CV_WARN:
            notes.append(f"WARNING: {row['variant_id']} ({row['task']}): J/inference CV "
                         f"{row['J_per_inference_cv']:.1%} > {CV_WARN:.0%}; the machine was noisy, rerun or lengthen windows.")
    return notes


def write(run_dirs: list[Path], out_dir: Path | None = None,
          carbon: Carbon | None = None) -> tuple[pd.DataFrame, str, list[str]]:
    """Build everything from run dirs and write it into ``out_dir`` (default: the single
    run dir; with several and no ``out_dir``, nothing is written). Returns
    (table, markdown, warnings)."""
    carbon = carbon or carbon_from()
    recs, warnings = load_run_dirs(run_dirs)
    table = add_lifecycle(build_table(recs), carbon)
    batches = build_batch_table(recs)
    notes = footnotes(recs, table, carbon)
    if len(batches):
        notes.append("batch sizes: every batch size is measured in the same interleaved rounds over the same eval "
                      "examples; the main table's J/inference is the one at measure.batch_size.")
    md = render.markdown(table, notes, batches)
    target = out_dir or (run_dirs[0] if len(run_dirs) == 1 else None)
    if target is not None and len(table):
        ensure_dir(target, "report folder")
        tex = render.latex(table, notes)
        # each written beside and renamed: an old table is never left half-overwritten
        write_atomic(target / "table.md", lambda p: p.write_text(md))
        write_atomic(target / "table.tex", lambda p: p.write_text(tex))
        write_atomic(target / "table.csv", lambda p: table.to_csv(p, index=False))
        write_atomic(target / "table.parquet", lambda p: table.to_parquet(p, index=False))
        write_atomic(target / "accuracy_vs_energy.png", lambda p: plots.accuracy_vs_energy(table, p))
        write_atomic(target / "lifecycle_energy.png", lambda p: plots.lifecycle_energy(table, p))
        if len(batches):
            write_atomic(target / "batch_sizes.csv", lambda p: batches.to_csv(p, index=False))
            write_atomic(target / "batch_size_energy.png", lambda p: plots.batch_size_energy(batches, p))
    return table, md, warnings
