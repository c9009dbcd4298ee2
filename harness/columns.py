"""Every column of the published table, declared once: its name, type, unit and meaning.

``table.py`` computes the values (one dict per variant, keyed by these names),
``lifecycle.py`` adds the lifecycle columns; this module is what every output reads:
the typed DataFrame (``typed``: one explicit schema, so every run's CSV and Parquet have
the same dtypes and any runs concatenate), the data dictionary written beside the table
(``columns.csv`` and the Parquet schema metadata), the LaTeX paper table's default
columns (``PAPER``), and the history database, which stores every column by these
names (its ``columns`` JSON).

Types are numbers, booleans and strings only: missing is null (never "-"), "never" is a
null beside a status (``break_even_status``), fractions are fractions (0.5, not "+-50%").
A boolean is never null (a reader that infers types from CSV text would read an empty
column as text): a three-valued fact is a string. Adding a column is one ``Column`` here
plus its value in ``table._row`` (or ``decisions.add_decisions``,
``lifecycle.add_lifecycle``); every output then carries it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import pandas as pd

#: pandas dtypes by kind: nullable, so an empty column keeps its type in every run
DTYPES = {"string": "string", "int": "Int64", "float": "Float64", "bool": "boolean"}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # string | int | float | bool
    unit: str  # "" where none: count, fraction, J, s, W, FLOP, bytes, 1/s, 1/J, g, inferences
    description: str
    #: A derived column's value from the row's other values (the table's columns and the
    #: lifecycle's); None for the columns table.py and lifecycle.py compute themselves.
    compute: Callable[[dict[str, Any]], Any] | None = field(default=None, compare=False)
    #: The markdown table that shows it with plain formatting ("main" or "cost"); None
    #: for the built-in columns, which render.py lays out with their own cells.
    section: str | None = None

    @property
    def dtype(self) -> str:
        return DTYPES[self.kind]


_c = Column  # short, for the table below


COLUMNS: tuple[Column, ...] = (
    _c("suite", "string", "", "the suite's name"),
    _c("task", "string", "", "the task (eval split: the task's held-out split, never trained on)"),
    _c("model", "string", "", "the architecture, e.g. cnn[16, 32]-fc64 or bert L2 H128 A2 I512"),
    _c("variant_id", "string", "", "the row: model.technique, e.g. bert_tiny.int8"),
    _c("variant", "string", "", "the technique that made the row (baseline for a trained model)"),
    _c("parent", "string", "", "the row it was derived from; null for a trained baseline"),
    _c("params_desc", "string", "", "the technique's parameters"),
    _c("runtime", "string", "", "how the row ran: eager, onnxruntime, compile (options that differ from defaults)"),
    _c("seeds", "int", "count", "seeds with a result (each trained model once; a model no seed changes, such as a given file or its int8, counts once)"),
    _c("device", "string", "", "where it ran, e.g. cpu or cuda:0 (NVIDIA H100 80GB HBM3)"),
    _c("params", "int", "count", "parameters of the module as it runs"),
    _c("nonzero_params", "int", "count", "parameters that are not zero"),
    _c("size_bytes", "int", "bytes", "the artifact's size on disk (safetensors, or the .onnx file)"),
    _c("sparsity", "float", "fraction", "the share of the parent's parameters (all of them: embeddings, norms and "
                                        "biases too) that are zero or removed in a pruned row, whatever the "
                                        "technique; null when not pruned"),
    _c("sparsity_exploited", "bool", "", "whether the kernels skip the zeros (a smaller dense layer, 2:4 kernels); "
                                         "false where nothing was pruned (no zeros to skip)"),
    _c("sparsity_note", "string", "", "how the sparsity is or is not exploited"),
    _c("flops_per_inference", "float", "FLOP", "torch.utils.flop_counter over the eval split, per example; work, "
                                              "not energy"),
    _c("train_flops", "float", "FLOP", "3 x forward FLOPs on the training batches x examples; null when nothing "
                                       "was trained"),
    _c("instructions_per_inference", "float", "instructions",
       "executed instructions per inference under valgrind's callgrind (one thread, measure.work: instructions), "
       "median over runs and seeds; work, not energy; null where not counted", section="main"),
    _c("work_method", "string", "", "how instructions_per_inference was counted (tool, threads, passes), or why it "
                                    "was not"),
    _c("n_eval", "int", "examples", "examples in the eval split"),
    _c("accuracy", "float", "fraction", "correct answers on the eval split, pooled over seeds"),
    _c("accuracy_ci95_lo", "float", "fraction", "95% interval, low (method: accuracy_ci_method)"),
    _c("accuracy_ci95_hi", "float", "fraction", "95% interval, high"),
    _c("accuracy_ci_method", "string", "", "Wilson over examples (one seed) or a seeds x examples bootstrap"),
    _c("accuracy_seed_std", "float", "fraction", "standard deviation of accuracy over seeds"),
    _c("macro_f1", "float", "fraction", "unweighted mean of per-class F1 on the eval split"),
    _c("task_metric", "string", "", "the task's own metric: accuracy, f1 or mcc"),
    _c("task_metric_value", "float", "", "its value on the eval split (mean over seeds)"),
    _c("accuracy_delta_vs_parent", "float", "fraction", "accuracy minus the parent's on the same examples"),
    _c("delta_p", "float", "", "two-sided p of that delta (method: delta_test); not adjusted for multiplicity"),
    _c("delta_test", "string", "", "McNemar (one seed) or a paired seeds x examples bootstrap"),
    _c("train_J", "float", "J", "energy of every window spent creating the row (gross), per seed"),
    _c("train_J_net", "float", "J", "train_J less idle power x duration; null below the meter's resolution"),
    _c("train_s", "float", "s", "duration of the creation work itself, per seed (a window padded to the meter's "
                                "resolution counts its work's seconds, not the padding)"),
    _c("train_J_is_bound", "bool", "", "true when train_J is an upper bound, not a value: a creation window below "
                                       "the meter's resolution kept its padded gross reading (printed <= in every "
                                       "format)"),
    _c("train_J_source", "string", "", "how train_J is known: measured; reported (by the user, for a variant made "
                                       "outside joulebench; + measured for windows joulebench added); unknown (made "
                                       "outside joulebench: train_J and the lineage figures are null, never 0 J)"),
    _c("val_accuracy", "float", "fraction", "final validation accuracy of the training curve (validation split)"),
    _c("target_accuracy", "float", "fraction", "the curve's target: train.target_accuracy; null when relative"),
    _c("target_share_of_final", "float", "fraction", "the relative target (share of each seed's final validation "
                                                     "accuracy); null when absolute"),
    _c("J_to_target", "float", "J", "training energy at the first curve point reaching the target, mean over "
                                    "seeds; null unless every seed reached it"),
    _c("J_to_target_seeds_reached", "float", "count", "seeds whose curve reached the target (a count; float so a "
                                                      "run without curves types it alike)"),
    _c("curve_eval_J", "float", "J", "the curve's validation passes, in their own windows (never in train_J)"),
    _c("tuning_J", "float", "J", "the sweep that chose the row's hyperparameters, per seed; null when not swept"),
    _c("J_per_inference", "float", "J", "gross energy per inference: median over windows (one run) or of the run "
                                        "medians (several)"),
    _c("J_per_inference_is_bound", "bool", "", "true when a window pooled into J_per_inference read more than a "
                                               "component can draw over its seconds and was kept as an upper bound; "
                                               "the median is then an upper bound too (printed <= in every format)"),
    _c("J_per_inference_runs", "float", "runs", "runs the J/inference figure pools"),
    _c("J_per_inference_within_run_ci95_lo", "float", "J", "95% interval within the run (order statistics over its "
                                                           "windows); null over several runs"),
    _c("J_per_inference_within_run_ci95_hi", "float", "J", "95% interval within the run, high"),
    _c("J_per_inference_across_runs_ci95_lo", "float", "J", "95% interval across runs (runs are the unit; 6 runs or "
                                                            "more)"),
    _c("J_per_inference_across_runs_ci95_hi", "float", "J", "95% interval across runs, high"),
    _c("J_per_inference_cv", "float", "fraction", "coefficient of variation over windows"),
    _c("J_per_inference_seed_std", "float", "J", "standard deviation over seeds of each seed's median"),
    _c("J_per_inference_net", "float", "J", "net energy per inference: gross less idle power x duration"),
    _c("J_per_inference_net_within_run_ci95_lo", "float", "J", "95% interval of the net figure within the run"),
    _c("J_per_inference_net_within_run_ci95_hi", "float", "J", "95% interval of the net figure, high"),
    _c("idle_W", "float", "W", "idle power of this run's machine, measured before the windows"),
    _c("inferences_per_s", "float", "1/s", "throughput in the measured windows (median)"),
    _c("correct_per_J", "float", "1/J", "accuracy / J_per_inference"),
    _c("instructions_per_correct", "float", "instructions", "instructions_per_inference / accuracy: work per correct "
                                                            "answer, not energy",
       compute=lambda r: _ratio(r.get("instructions_per_inference"), r.get("accuracy")), section="cost"),
    _c("energy_method", "string", "", "how the joules were obtained: nvml, rapl, estimate (and where, when creation "
                                      "and inference differ)"),
    _c("energy_uncertainty", "float", "fraction", "stated systematic error of J_per_inference (0.5 = +-50%)"),
    _c("shared_windows", "float", "count", "inference windows during which other processes used more than a quarter "
                                           "of the machine's CPU, or held its GPU (their work is in a RAPL or NVML "
                                           "reading of them); null where neither can be told"),
    _c("unsettled_windows", "float", "count", "inference windows that ended while another thread of this process "
       "still worked after measure.settle's whole wait (their joules hold its work); null in records before this check"),
    _c("compiles_in_windows", "float", "count", "graphs compiled inside measured windows (compile rows; must be 0)"),
    _c("pareto", "bool", "", "no row of the task is as accurate and cheaper per inference, and better in one"),
    _c("p_frontier", "float", "probability", "share of bootstrap replicates (examples, seeds and J/inference units "
                                              "resampled) in which the row is on its task's frontier"),
    _c("verdict", "string", "", "against its parent: cheaper, not worse / cheaper, worse / not cheaper / undecided "
                                "(how many more windows or examples would decide); null without a parent"),
    _c("verdict_energy_p", "float", "p", "one-sided Mann-Whitney p that J/inference is lower than the parent's "
                                         "(windows within one run, run medians across runs)"),
    _c("verdict_accuracy_p", "float", "p", "one-sided paired bootstrap p of non-inferiority: accuracy lost against "
                                           "the parent below the decide margin"),
    _c("break_even_inferences", "float", "inferences", "train_J / (parent J/inference - J/inference), if it pays back"),
    _c("break_even_ci95_lo", "float", "inferences", "95% bootstrap interval of the break-even (saving: J/inference "
                                                    "units; creation: seeds), low"),
    _c("break_even_ci95_hi", "float", "inferences", "95% bootstrap interval of the break-even, high"),
    _c("break_even_status", "string", "", "pays back / pays back (upper bound) / no saving (the saving's 95% "
                                          "interval reaches 0) / unknown creation / no parent"),
    _c("lineage_train_J", "float", "J", "creation energy along the lineage, the search that chose its root included"),
    _c("lineage_train_J_is_bound", "bool", "", "true when a creation figure along the lineage is an upper bound "
                                               "(train_J_is_bound), so lineage_train_J and train_gCO2e are too"),
    _c("lifecycle_is_bound", "bool", "", "true when lineage_train_J or J_per_inference is an upper bound, so the "
                                         "J_at_*_queries figures are too"),
    _c("J_at_1e3_queries", "float", "J", "lineage_train_J + 1e3 x J_per_inference"),
    _c("J_at_1e6_queries", "float", "J", "lineage_train_J + 1e6 x J_per_inference"),
    _c("J_at_1e9_queries", "float", "J", "lineage_train_J + 1e9 x J_per_inference"),
    _c("train_gCO2e", "float", "g", "lineage_train_J as carbon (the footnote gives the constants)"),
    _c("gCO2e_per_1e6_queries", "float", "g", "1e6 inferences as carbon"),
    # provenance: which runs the row pools, so the tables of many runs concatenate and
    # can still be told apart (several values: comma-separated, sorted)
    _c("run_id", "string", "", "the identity of the run(s) the row pools (environment.json run_id)"),
    _c("git_commit", "string", "", "the commit(s) joulebench ran at (-dirty where the tree had changes)"),
    _c("machine", "string", "", "the machine key(s): a digest of host, CPU as the kernels see it, GPUs and device"),
    _c("profile", "string", "", "the suite profile: full or quick"),
    _c("started_at", "string", "", "when the first record of the row started (UTC, ISO 8601)"),
    _c("joulebench_version", "string", "", "the joulebench version(s) that measured the row"),
)

def _ratio(num: Any, den: Any) -> float | None:
    if num is None or den is None or num != num or den != den or not den:
        return None
    return float(num) / float(den)


def by_name() -> dict[str, Column]:
    return {c.name: c for c in COLUMNS}


def names() -> list[str]:
    return [c.name for c in COLUMNS]


def derived(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every derived column (``Column.compute``) filled in, in declared order."""
    extra = [c for c in COLUMNS if c.compute is not None]
    if not extra:
        return table
    out = table.copy()
    rows = out.to_dict("records")
    for c in extra:
        out[c.name] = [c.compute(r) for r in rows]
    return out[[n for n in names() if n in out.columns] + [n for n in out.columns if n not in names()]]


#: Added by decisions.add_decisions, from the records' samples beside the table.
DECISIONS = ("p_frontier", "verdict", "verdict_energy_p", "verdict_accuracy_p", "break_even_inferences",
             "break_even_ci95_lo", "break_even_ci95_hi", "break_even_status")

#: Added by lifecycle.add_lifecycle, from the table's own columns.
LIFECYCLE = ("pareto", "lineage_train_J", "lineage_train_J_is_bound", "J_at_1e3_queries", "J_at_1e6_queries",
             "J_at_1e9_queries", "lifecycle_is_bound", "train_gCO2e", "gCO2e_per_1e6_queries")

#: A figure that may be an upper bound, and the flag column that says so: every output
#: that prints the figure reads its flag here (md and the plots mark it, tex $\le$).
BOUND_FLAGS = {"train_J": "train_J_is_bound", "J_per_inference": "J_per_inference_is_bound",
               "J_per_inference_net": "J_per_inference_is_bound", "correct_per_J": "J_per_inference_is_bound",
               "lineage_train_J": "lineage_train_J_is_bound", "train_gCO2e": "lineage_train_J_is_bound",
               "gCO2e_per_1e6_queries": "J_per_inference_is_bound", "break_even_inferences": "train_J_is_bound",
               "break_even_ci95_lo": "train_J_is_bound", "break_even_ci95_hi": "train_J_is_bound",
               **{f"J_at_{n}_queries": "lifecycle_is_bound" for n in ("1e3", "1e6", "1e9")}}

#: Figures that divide by a bounded energy: a lower bound where the energy is an upper one.
LOWER_BOUNDS = ("correct_per_J",)


def is_bound(row: Any, col: str) -> bool:
    """Whether the row's figure ``col`` is an upper bound (its flag in BOUND_FLAGS)."""
    flag = row.get(BOUND_FLAGS.get(col, ""))
    return flag is not None and not pd.isna(flag) and bool(flag)


#: The paper table's default columns (``table.tex``): what fits a two-column article
#: (the technique is shown under each variant id).
PAPER = ("variant_id", "accuracy", "accuracy_delta_vs_parent", "J_per_inference", "correct_per_J",
         "train_J", "break_even_inferences")


def _value(value: Any) -> Any:
    """A computed value as a cell: NaN and "-" are null."""
    if value is None or (isinstance(value, float) and value != value):
        return pd.NA
    return value


def typed(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with every declared column cast to its declared dtype (after lifecycle
    columns were added as plain pandas values)."""
    out = table.copy()
    declared = by_name()
    for name in out.columns:
        col = declared.get(name)
        if col is not None:
            values = out[name].astype(object).where(out[name].notna(), None)
            out[name] = pd.array([_value(v) for v in values], dtype=col.dtype)
    return out


def for_csv(data: pd.DataFrame) -> pd.DataFrame:
    """``data`` as table.csv holds it: a float column with no value in this run is written
    ``NaN`` in every cell, so readers that infer types from the text (polars, duckdb)
    read it as a number, as they do in a run where it has values; elsewhere a missing
    value is an empty cell. Parquet keeps the nulls and the declared types. (A count
    that is null where it does not apply is declared float for this reason.)"""
    out = data.copy()
    declared = by_name()
    for name in out.columns:
        col = declared.get(name)
        if col is not None and col.kind == "float" and out[name].isna().all():
            out[name] = pd.Series(["NaN"] * len(out), index=out.index, dtype=object)
    return out


def unknown(wanted: Iterable[str]) -> list[str]:
    known = by_name()
    return [n for n in wanted if n not in known]


def dictionary(wanted: Iterable[str] | None = None) -> pd.DataFrame:
    """The data dictionary: name, dtype, unit, description of each column."""
    cols = [by_name()[n] for n in wanted] if wanted is not None else list(COLUMNS)
    return pd.DataFrame([{"name": c.name, "dtype": c.kind, "unit": c.unit, "description": c.description}
                         for c in cols], columns=["name", "dtype", "unit", "description"])


def parquet_metadata(wanted: Iterable[str]) -> dict[bytes, bytes]:
    """The dictionary as Parquet schema metadata (key ``joulebench.columns``)."""
    return {b"joulebench.columns": json.dumps(dictionary(wanted).to_dict("records")).encode()}


def markdown_dictionary() -> str:
    """``docs/columns.md``: the data dictionary as the documentation shows it (a test
    keeps the file equal to this)."""
    lines = ["# Columns of table.csv and table.parquet", "",
             "Generated from `harness/columns.py` (the one declaration); `columns.csv` beside every table holds the "
             "same. Types: string, int, float, bool; missing is null.", "",
             "| name | dtype | unit | description |", "|---|---|---|---|"]
    lines += [f"| {c.name} | {c.kind} | {c.unit} | {c.description.replace('|', '/')} |" for c in COLUMNS]
    return "\n".join(lines) + "\n"
