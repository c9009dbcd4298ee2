"""Records -> every published artefact of a run: tables (md, csv, parquet, tex) and plots.

``joulebench report RUN_DIR [RUN_DIR ...]`` and the end of ``joulebench run`` both come
here. The steps: load records (warning on torn or foreign lines), build the finished
table (finished.py), render, plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import pandas as pd

from harness import appendix, columns, finished, latex, render, work
from harness.errors import UserError
from harness.files import ensure_dir, read_json, refuse_links_in, refuse_symlink, write_atomic
from harness.rundir import check_environment
from harness.lifecycle import Carbon, carbon_from
from harness.meters.sharing import SHARED_SHARE
from harness.records import FIGURES, RUN_FILES, RunRecord
from harness.comparable import load_runs
from harness.table import CV_WARN
from harness.tables import build_batch_table, build_sweep_table, build_trial_table, cross_check_notes

def footnotes(recs: list[RunRecord], table: pd.DataFrame, carbon: Carbon, decide: Mapping | None = None) -> list[str]:
    notes = [f"Energy method: {f}" for f in sorted({f for r in recs for f in r.meter.get("formulas", [])})]
    notes.append("accuracy: on the held-out eval split. 95% CI: Wilson over examples with one seed; with several, a "
                 "bootstrap resampling seeds and examples together (3 seeds x 450 examples are not 1,350 independent "
                 "trials). Delta vs the parent on the same examples: McNemar (exact binomial when b+c < 25) with one "
                 "seed, a paired seeds x examples bootstrap with several; p not adjusted for multiplicity.")
    notes.append("J/inference: median over windows; its 95% CI (order statistics) is WITHIN RUN: the windows of "
                 "one run share its machine state, so the interval does not cover run-to-run drift (compare "
                 "repeated runs for that). net = gross - idle W x window s. correct/J = accuracy / gross J/inference.")
    if table["J_per_inference_runs"].gt(1).any():
        notes.append("J/inference over several runs of a suite: the median of each run's median, labelled with the "
                     "run count; its 95% CI is ACROSS RUNS (runs are the unit; order statistics, none under 6 runs). "
                     "Accuracy counts each trained model once per seed: repeated runs re-measure the same models.")
    mixed = sorted({m for m in table["energy_method"] if m.startswith("train: ")})
    if mixed:
        notes.append("energy method 'train: A; inference: B': creation energy was measured by another method or on "
                     "another host than inference (reused from the artifact cache); the two are not comparable as "
                     "one measurement. idle W is always this run's own.")
    notes.append("train J: every window spent creating the variant (training, fine-tuning, teacher logits); "
                 "lineage train J adds its ancestors'; J at N queries = lineage train J + N x J/inference; "
                 "break-even = train J / (parent J/inference - J/inference) [95% bootstrap interval], 'no saving' where "
                 "the saving's 95% interval reaches 0. verdict vs the parent: J/inference lower by a one-sided "
                 "Mann-Whitney test (windows within a run, run medians across runs), accuracy non-inferior within the "
                 "suite's margin by a one-sided paired bootstrap; p on frontier: bootstrap share of replicates on the "
                 "frontier (docs/statistics.md)." + "".join(
                     f" decide ({k or 'command line'}): accuracy margin {v.accuracy_margin:g} at alpha "
                     f"{v.accuracy_alpha:g}, energy alpha {v.energy_alpha:g}." for k, v in sorted((decide or {}).items())
                     if k or len(decide or {}) == 1))  # "": the command line's, for a run with no environment
    outside = table[table["train_J_source"].fillna("measured") != "measured"] if "train_J_source" in table else table[:0]
    if len(outside):
        notes.append("made outside joulebench (" + ", ".join(sorted(outside["variant_id"])) + "): a checkpoint or an "
                     "ONNX file given by path; its accuracy, delta, J/inference and size are measured here as for every "
                     "row, its creation energy is not: 'unknown' (train J, lineage, J at N queries, carbon and "
                     "break-even are null, never 0 J) or 'reported' by the user (their figure, not measured; marked "
                     "(reported), in LaTeX with a superscript r).")
    notes.append("energy uncertainty: the median over inference windows of the stated (systematic) error, "
                 "components added; NVML's +-5 W is a different fraction of each window's energy.")
    notes += cross_check_notes(recs)
    notes.append(f"Carbon: {carbon.describe()}.")
    notes.append("FLOPs: torch.utils.flop_counter over the eval split; training = 3 x forward FLOPs x examples "
                 "(+ teacher forwards), the forward FLOPs counted on the training batches (seeded shuffle, padded to "
                 "each batch's longest example); '-' where nothing was trained; quantized variants and rows under "
                 "another runtime report their parent's FLOPs. FLOPs count work, not energy.")
    works = [inf.work for r in recs if r.ok for inf in r.inferences() if inf.work is not None]
    if works:
        notes.append(f"{work.WHAT[0].upper()}{work.WHAT[1:]}. Valgrind implements no AVX-512 and emulates fused "
                     "multiply-adds slowly, so in the counting process the libraries run older kernels on any machine, "
                     "the ones work_method's tool string names (e.g. MKL held to SSE4.2, its AVX2 products ~1,500x "
                     "slower under valgrind): the count is of that code path, not of the one the energy windows ran; "
                     "instructions per correct answer = instructions per inference / accuracy.")
        skips = sorted({(w.skipped) for w in works if w.skipped})
        notes += [f"instructions not counted for some rows: {why}" for why in skips]
    used = sorted({r.runtime.get("name", "eager") for r in recs if r.ok} - {"eager"})
    if used:
        from harness.runtimes import RUNTIMES  # torch: only where runtime rows are shown

        infos = {name: [r.runtime.get("info") or {} for r in recs if r.ok and r.runtime.get("name") == name]
                 for name in used}
        noted = {name: RUNTIMES.get(name).noted(infos[name]) for name in used if name in RUNTIMES}
        said = [f"{name}: {text}" for name, text in noted.items() if text]
        notes.append("runtime: how the row was evaluated and measured (eager PyTorch unless named). Accuracy is "
                     "evaluated under the runtime, so its delta vs the parent (same module, eager) is the runtime's "
                     "own effect." + "".join(" " + x for x in said))
    notes += curve_notes(recs, table)
    for _, row in table.iterrows():
        if pd.notna(row["compiles_in_windows"]) and row["compiles_in_windows"] > 0:
            notes.append(f"WARNING: {row['variant_id']} ({row['task']}): {int(row['compiles_in_windows'])} graph(s) "
                         "were compiled inside measured windows; its J/inference includes compilation.")
    short = [(r, w) for r in recs if r.ok for w in r.train.windows() if w.work_s is not None]
    if short:
        bound = [f"{r.variant_id} seed {r.seed}" for r, w in short if w.below_resolution]
        notes.append(f"short creation work ({', '.join(sorted({r.variant_id for r, _ in short}))}: "
                     f"{min(w.work_s for _, w in short) * 1e3:.3g}-{max(w.work_s for _, w in short) * 1e3:.3g} ms) is "
                     "shorter than the meter resolves: its window was padded with idle time to the meter's minimum "
                     "and the padding's idle energy taken out."
                     + (f" Below resolution ({', '.join(bound)}): the work could not be told from idle or read more "
                        "than the machine can draw, so its train J is the padded window's gross, an upper bound, "
                        "and its net is empty." if bound else ""))
    for r in (r for r in recs if r.ok):
        paid = sum(w.imports or 0 for w in r.train.windows())
        if paid:
            notes.append(f"WARNING: {r.variant_id} (seed {r.seed}): {paid} Python module(s) were first imported inside "
                         "its creation windows; its train J includes one-time work of the process.")
    for r in recs:
        if r.status == "skipped":
            notes.append(f"skipped {r.variant_id} (seed {r.seed}): {r.reason}")
    noisy = [f"{row['variant_id']} ({row['task']}) {row['J_per_inference_cv']:.1%}" for _, row in table.iterrows()
             if row["J_per_inference_cv"] > CV_WARN]
    if noisy:  # one line naming every such row, not one per row
        notes.append(f"WARNING: J/inference CV above {CV_WARN:.0%} in {len(noisy)} row(s): {', '.join(noisy)}; the "
                     "machine was noisy: rerun on a quieter machine, or lengthen the windows (measure.min_window_s)")
    shared = _flagged(table, "shared_windows")
    if shared:  # the table's count (table._row), named here with what it means
        windows = sum(len(r.inference.windows) for r in recs if r.status == "ok" and r.inference)
        notes.append(f"WARNING: shared windows: {shared[0]} of {windows} inference windows ({shared[1]}) "
                     f"ran while other processes used more than {SHARED_SHARE:.0%} of the machine's CPU, or held "
                     "its GPU: a RAPL or "
                     "NVML reading of them includes their work, and the machine's speed was shared (the estimate "
                     "counts this process tree only); rerun on an idle node (joulebench slurm: --exclusive)")
    unsettled = _flagged(table, "unsettled_windows")
    if unsettled:  # the table's count, as the run's log warned of it
        notes.append(f"WARNING: unsettled windows: {unsettled[0]} inference window(s) ({unsettled[1]}) ended while "
                     "another thread of the process was still working (a plugin's thread, a pool left running): their "
                     "joules include its work")
    return notes


def _flagged(table: pd.DataFrame, count: str) -> tuple[int, str] | None:
    """A window count column's total over the rows where it is above 0, and those rows'
    variant ids; None where no row has one."""
    rows = table[table[count].fillna(0) > 0] if count in table else table[:0]
    return (int(rows[count].sum()), ", ".join(sorted(rows["variant_id"]))) if len(rows) else None


def curve_notes(recs: list[RunRecord], table: pd.DataFrame) -> list[str]:
    """What J to target, validation passes J and tuning J mean, and where a target was missed."""
    notes = []
    carved = next((r.data.get("validation") for r in recs if r.data.get("validation")), None)
    if carved:
        notes.append(f"validation split: {carved['n']} examples ({carved['fraction']:g} of the training split, at most "
                     f"{carved['max_examples']}, seed {carved['seed']}) carved out before training; never trained on. "
                     "Curves and sweep selection use it; the eval split is used only for the final accuracy.")
    searched = bool(table["tuning_J"].notna().any())
    if table["J_to_target_seeds_reached"].notna().any():
        notes.append("J to target: the training energy (gross; the variant's own training loop, its validation passes "
                     "excluded) at the first curve point whose validation accuracy reached the target "
                     "(train.target_accuracy, else 99% of that seed's final validation accuracy); mean over seeds, "
                     "resolution one curve interval. validation passes J: the curve's evaluations in their own "
                     "windows, reported here and never inside train J; "
                     + ("lineage train J holds a search's trials, and so their validation passes (see tuning J)."
                        if searched else "nor inside lineage train J."))
    for _, row in table.iterrows():
        if pd.notna(row["J_to_target_seeds_reached"]) and pd.isna(row["J_to_target"]):
            notes.append(f"J to target of {row['variant_id']} ({row['task']}) is empty: validation accuracy reached "
                         f"{render.fmt_target(row)} in only {int(row['J_to_target_seeds_reached'])} of {int(row['seeds'])} "
                         "seed(s).")
    if searched:
        notes.append("tuning J: every trial of the sweep that chose the row's hyperparameters (every configuration; "
                     "their training and validation passes; the selected trial included, whose training is the row's "
                     "train J), per seed like train J: the total over all seeds divided by the seeds. lineage "
                     "train J counts the search in place of the row's train J, so every variant derived from it "
                     "pays for it. Trials are selected on the validation split and "
                     "never see the eval split.")
    return notes


def pick_columns(select: list[str] | None) -> list[str]:
    """The data columns to write: all declared ones, or those ``--columns`` names (the
    row's identity first, so a selection still says which row is which)."""
    if not select:
        return columns.names()
    bad = columns.unknown(select)
    if bad:
        raise UserError(f"--columns: unknown column {bad[0]!r}; the columns are listed in columns.csv beside any "
                        f"table (e.g. {', '.join(columns.PAPER[:4])})")
    return list(dict.fromkeys(["suite", "task", "variant_id", *select]))


def write_parquet(data: pd.DataFrame, path: Path) -> None:
    """The typed table with the data dictionary in its schema metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(data, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                          **columns.parquet_metadata(list(data.columns))})
    pq.write_table(table, path)


def _slurm_energy(env: dict) -> str | None:
    """What Slurm accounted for the jobs of a merged run (its environment), beside our own figures."""
    got = env.get("slurm_energy")
    if not isinstance(got, dict):
        return None
    total, jobs, missing = got.get("total_j"), got.get("jobs"), got.get("missing") or []
    if isinstance(total, (int, float)) and not isinstance(total, bool) and total > 0 and isinstance(jobs, dict):
        return (f"Slurm: {float(total):.4g} J over {len(jobs)} job(s), by {str(got.get('what', ''))[:300]}"
                + (f"; no figure for {', '.join(map(str, missing))}" if isinstance(missing, list) and missing else ""))
    return f"Slurm's energy accounting: none ({str(got.get('unavailable', 'unknown'))[:200]})."


def _draw(table: pd.DataFrame, recs: list, batches: pd.DataFrame, target: Path) -> None:
    """The figures (records.FIGURES), each as PNG and PDF; matplotlib is imported only here."""
    from harness import plot_curves, plots

    style = plots.Style.of(table)  # one colour per variant in every figure
    figures = {"accuracy_vs_energy": plots.accuracy_vs_energy(table, style),
               "lifecycle_energy": plots.lifecycle_energy(table, style)}
    if table["J_to_target_seeds_reached"].notna().any():
        figures["training_curves"] = plot_curves.training_curves(recs, style)
    if len(batches):
        figures["batch_size_energy"] = plots.batch_size_energy(batches, style)
    plots.save(figures, target)  # PNG and PDF each


def write(run_dirs: list[Path], out_dir: Path | None = None,
          carbon: Carbon | None = None, with_appendix: bool = False,
          select: list[str] | None = None,
          decide: Mapping[str, float] | None = None, plots: bool = True) -> tuple[pd.DataFrame, str, list[str]]:
    """Build everything from run dirs and write it into ``out_dir`` (default: the single
    run dir; with several and no ``out_dir``, nothing is written). ``with_appendix`` also
    writes appendix.md and appendix.tex (one run dir: its environment describes it);
    ``decide`` overrides the suites' decide settings (finished.overrides); ``plots=False``
    writes the tables without the figures (a nightly gate, a shard that a merge draws
    again), and warns of figures left there by an earlier report. Returns (table,
    markdown, warnings)."""
    carbon = carbon or carbon_from()
    env_path = Path(run_dirs[0]) / "environment.json"
    if with_appendix and (len(run_dirs) != 1 or not env_path.is_file()):
        raise UserError("--appendix describes one run: pass a single run directory (with its environment.json); "
                        "merge shards first with joulebench merge")
    picked = pick_columns(select)
    paper_columns = [c for c in (select or columns.PAPER)]
    runs = load_runs(run_dirs)
    recs, warnings = [r for run in runs for r in run.records], [w for run in runs for w in run.warnings]
    settings = finished.decide_settings(runs, decide)
    table = finished.table(recs, carbon, settings)
    batches = build_batch_table(recs)
    sweeps, trials = build_sweep_table(recs, table), build_trial_table(recs)
    notes = footnotes(recs, table, carbon, settings)
    slurm_note = _slurm_energy(runs[0].environment)
    if slurm_note:
        notes.append(slurm_note)
    if len(batches):
        notes.append("batch sizes: every batch size is measured in the same interleaved rounds over the same eval "
                      "examples; the main table's J/inference is the one at measure.batch_size.")
    md = (render.selected_markdown(table, picked, notes) if select else render.markdown(table, notes, batches, sweeps))
    target = out_dir or (run_dirs[0] if len(run_dirs) == 1 else None)
    if target is not None and len(table):
        refuse_symlink(target, "report folder")  # the folder itself: a link would carry every write elsewhere
        refuse_links_in(target, RUN_FILES, "report folder")  # before the first table is written
        ensure_dir(target, "report folder")
        title = ", ".join(sorted(set(table["suite"])))
        tex = latex.paper_latex(table, notes, title, paper_columns)
        tex_full = latex.latex(table, notes, title)
        data = columns.typed(table[picked])
        # each written beside and renamed: an old table is never left half-overwritten
        write_atomic(target / "table.md", lambda p: p.write_text(md))
        write_atomic(target / "table.tex", lambda p: p.write_text(tex))
        write_atomic(target / "table_full.tex", lambda p: p.write_text(tex_full))
        write_atomic(target / "table.csv", lambda p: columns.for_csv(data).to_csv(p, index=False))
        write_atomic(target / "table.parquet", lambda p: write_parquet(data, p))
        write_atomic(target / "columns.csv", lambda p: columns.dictionary(picked).to_csv(p, index=False))
        if plots:
            _draw(table, recs, batches, target)
        else:
            stale = sorted(p.name for p in target.iterdir() if p.stem in FIGURES and p.suffix in (".png", ".pdf"))
            if stale:
                warnings.append(f"figures not drawn (plots off): {', '.join(stale)} are from an earlier report, "
                                "not of this table; report again with plots to redraw them")
        if len(trials):
            write_atomic(target / "sweeps.csv", lambda p: sweeps.to_csv(p, index=False))
            write_atomic(target / "trials.csv", lambda p: trials.to_csv(p, index=False))
        if len(batches):
            write_atomic(target / "batch_sizes.csv", lambda p: batches.to_csv(p, index=False))
        if with_appendix:
            env = check_environment(read_json(env_path, "environment file"), env_path)
            md_a = appendix.markdown(env, table, carbon, sweeps, Path(run_dirs[0]))
            tex_a = appendix.latex(env, table, carbon, sweeps, Path(run_dirs[0]))
            write_atomic(target / "appendix.md", lambda p: p.write_text(md_a))
            write_atomic(target / "appendix.tex", lambda p: p.write_text(tex_a))
    return table, md, warnings
