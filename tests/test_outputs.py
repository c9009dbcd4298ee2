"""The outputs as their real clients read them: pdflatex compiles the paper table and the
appendix in a two-column article with no overfull box; pandas, polars and SQLite read
and concatenate the CSVs and Parquets of three different runs; a column declared once
appears in every output."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from harness import columns, report
from tests.conftest import ROOT

REFERENCES = [ROOT / "results" / "reference" / name for name in ("digits", "sst2", "sst2_sweep")]
IN_CI = bool(os.environ.get("CI"))

ARTICLE = r"""\documentclass[twocolumn]{article}
\usepackage{booktabs}
\usepackage{graphicx}
%s
\begin{document}
\typeout{COLUMNWIDTH=\the\columnwidth}
\typeout{TEXTWIDTH=\the\textwidth}
\input{table.tex}
\input{appendix.tex}
\end{document}
"""
#: measure the tables' natural width: each \resizebox reports its content's width
MEASURE = r"\renewcommand{\resizebox}[3]{\sbox0{#3}\typeout{WIDTH=\the\wd0}\usebox0}"


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> list[Path]:
    """The committed reference runs, reported afresh (with the appendix)."""
    out = []
    for ref in REFERENCES:
        folder = tmp_path_factory.mktemp(ref.name)
        report.write([ref], folder, with_appendix=True, plots=False)  # the figures: their own test below
        out.append(folder)
    return out


def pdflatex(folder: Path, preamble: str = "") -> str:
    (folder / "doc.tex").write_text(ARTICLE % preamble)
    proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "doc.tex"], cwd=folder,
                          capture_output=True, text=True, timeout=120)
    log = (folder / "doc.log").read_text(errors="replace")
    assert proc.returncode == 0, log[-3000:]
    return log


@pytest.mark.skipif(shutil.which("pdflatex") is None and not IN_CI,
                    reason="no pdflatex here (apt-get install texlive-latex-base texlive-latex-recommended)")
def test_the_paper_table_and_appendix_compile_in_a_two_column_article(reports: list[Path]) -> None:
    assert shutil.which("pdflatex"), "CI installs TeX Live: the test command's apt-get line failed"
    for folder in reports:
        log = pdflatex(folder)
        assert "Overfull \\hbox" not in log and "! " not in log, (folder.name, log[-3000:])
        # and it fits by itself, not by shrinking the type: the natural widths
        widths = [float(x.split("=")[1].rstrip("pt")) for x in pdflatex(folder, MEASURE).splitlines()
                  if x.startswith("WIDTH=")]
        column = float(next(x for x in log.splitlines() if x.startswith("COLUMNWIDTH=")).split("=")[1][:-2])
        text = float(next(x for x in log.splitlines() if x.startswith("TEXTWIDTH=")).split("=")[1][:-2])
        paper, appendix = widths
        assert paper <= 1.2 * column, (folder.name, paper, column)  # at most 17% smaller type
        assert appendix <= 1.2 * text, (folder.name, appendix, text)
        tex = (folder / "table.tex").read_text()
        text_mode = re.sub(r"\$[^$]*\$", "", tex.split("\\begin{tabular}")[1])  # < in math mode is a <
        assert "\\label{tab:" in tex and "<" not in text_mode and ">" not in text_mode  # OT1 prints them as ¡ ¿


@pytest.mark.skipif(shutil.which("pdflatex") is None and not IN_CI,
                    reason="no pdflatex here (apt-get install texlive-latex-base texlive-latex-recommended)")
def test_the_full_table_fits_a_two_column_article(reports: list[Path]) -> None:
    """table_full.tex (every column) on the page of a two-column article: no overfull box."""
    for folder in reports:
        (folder / "full.tex").write_text("\\documentclass[twocolumn]{article}\n\\usepackage{booktabs,tabularx}\n"
                                         "\\begin{document}\n\\input{table_full.tex}\n\\end{document}\n")
        proc = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "full.tex"], cwd=folder,
                              capture_output=True, text=True, timeout=120)
        log = (folder / "full.log").read_text(errors="replace")
        assert proc.returncode == 0 and "Overfull \\hbox" not in log, (folder.name, log[-2000:])


def test_three_runs_concatenate_with_numbers_as_numbers(reports: list[Path]) -> None:
    import polars as pl

    parquets = [pd.read_parquet(f / "table.parquet") for f in reports]
    assert all(list(p.dtypes) == list(parquets[0].dtypes) for p in parquets)  # one schema for every run
    both = pd.concat(parquets, ignore_index=True)
    assert len(both) == sum(len(p) for p in parquets)
    assert parquets[0]["tuning_J"].isna().all()  # a run with an empty column keeps its type
    lazy = pl.concat([pl.read_parquet(f / "table.parquet") for f in reports])
    assert not [c for c, t in lazy.schema.items() if t == pl.Null or t == pl.Object]
    # the CSVs: pandas as is; polars with the data dictionary written beside every table
    csvs = pd.concat([pd.read_csv(f / "table.csv") for f in reports], ignore_index=True)
    assert pd.api.types.is_float_dtype(csvs["break_even_inferences"])
    dictionary = pd.read_csv(reports[0] / "columns.csv")
    kinds = {"string": pl.String, "int": pl.Int64, "float": pl.Float64, "bool": pl.Boolean}
    schema = {r.name: kinds[r.dtype] for r in dictionary.itertuples()}
    pl.concat([pl.read_csv(f / "table.csv", schema=schema) for f in reports])
    # and with types inferred from the text: every float column reads as a number, even
    # in a run where it has no value (tuning_J without a sweep)
    floats = [r.name for r in dictionary.itertuples() if r.dtype == "float"]
    for f in reports:
        inferred = pl.read_csv(f / "table.csv", infer_schema_length=None).schema
        assert [c for c in floats if not inferred[c].is_numeric()] == [], f
    # a numeric aggregate over every numeric column, in SQLite
    numeric = [r.name for r in dictionary.itertuples() if r.dtype in ("int", "float")]
    con = sqlite3.connect(":memory:")
    both.to_sql("t", con)
    for name in numeric:
        value = con.execute(f'SELECT avg("{name}"), typeof(max("{name}")) FROM t').fetchone()
        assert value[1] in ("real", "integer", "null"), (name, value)
    # the dictionary is in the Parquet schema too
    import pyarrow.parquet as pq

    meta = pq.read_schema(reports[0] / "table.parquet").metadata
    assert b"joulebench.columns" in meta


def test_a_column_declared_once_appears_in_every_output(tmp_path: Path, monkeypatch) -> None:
    from harness import history

    added = columns.Column("accuracy_percent", "float", "%", "accuracy in percent (a test's column)",
                           compute=lambda row: 100 * row["accuracy"], section="main")
    monkeypatch.setattr(columns, "COLUMNS", columns.COLUMNS + (added,))
    out = tmp_path / "report"
    table, md, _ = report.write([REFERENCES[0]], out, plots=False)
    assert "accuracy_percent (%)" in md
    assert table["accuracy_percent"].tolist() == pytest.approx((100 * table["accuracy"]).tolist())
    assert "accuracy_percent" in pd.read_csv(out / "table.csv").columns
    assert "accuracy_percent" in pd.read_parquet(out / "table.parquet").columns
    assert "accuracy_percent" in set(pd.read_csv(out / "columns.csv")["name"])
    report.write([REFERENCES[0]], out, select=["variant_id", "accuracy_percent"], plots=False)  # LaTeX when selected
    assert "accuracy percent" in (out / "table.tex").read_text()
    store = tmp_path / "h.sqlite"
    history.add(store, [REFERENCES[0]])
    con = sqlite3.connect(store)
    stored = con.execute("SELECT columns FROM results LIMIT 1").fetchone()[0]
    assert "accuracy_percent" in stored


def test_without_plots_the_tables_are_written_and_earlier_figures_are_named_stale(tmp_path: Path) -> None:
    """--no-plots (plots=False): every table, no figure, no warning; where an earlier
    report left figures (planted), they stay as they were, and one warning names them as
    not of this table (a picture of the user's own is none of ours: not named)."""
    from harness import api
    from harness.errors import UserError
    from tests.conftest import cli

    out = tmp_path / "out"
    _, _, warned = report.write([REFERENCES[0]], out, plots=False)
    assert {"table.md", "table.csv", "table.parquet", "table.tex", "columns.csv"} <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.suffix in (".png", ".pdf")] and not warned
    planted = {"accuracy_vs_energy.png": b"old png", "accuracy_vs_energy.pdf": b"old pdf", "mine.png": b"mine"}
    for name, data in planted.items():
        (out / name).write_bytes(data)
    got = cli("report", str(REFERENCES[0]), "--out", str(out), "--no-plots")
    assert got.returncode == 0, got.stderr
    assert {name: (out / name).read_bytes() for name in planted} == planted  # left as they were
    stale = [line for line in got.stderr.splitlines() if "figures not drawn" in line]
    assert len(stale) == 1 and "accuracy_vs_energy.pdf, accuracy_vs_energy.png are from" in stale[0], got.stderr
    assert "mine" not in stale[0]
    with pytest.raises(UserError, match="plots= is True or False"):  # "no" would read as yes
        api.report([REFERENCES[0]], tmp_path / "never", plots="no")
    with pytest.raises(UserError, match="api.run plots= is True or False"):
        api.run("benchmarks/digits.yaml", quick=True, out=tmp_path / "never", plots="no")
    assert not (tmp_path / "never").exists()


def test_report_columns_picks_columns_for_every_format(tmp_path: Path) -> None:
    from tests.conftest import cli

    proc = cli("report", str(REFERENCES[0]), "--out", str(tmp_path / "r"), "--columns",
               "accuracy,J_per_inference")
    assert proc.returncode == 0, proc.stderr
    assert list(pd.read_csv(tmp_path / "r" / "table.csv").columns) == ["suite", "task", "variant_id", "accuracy",
                                                                      "J_per_inference"]
    assert "| accuracy (fraction) | J_per_inference (J) |" in proc.stdout
    bad = cli("report", str(REFERENCES[0]), "--out", str(tmp_path / "r2"), "--columns", "acuracy")
    assert bad.returncode == 2 and "unknown column 'acuracy'" in bad.stderr and not (tmp_path / "r2").exists()


def test_the_documented_columns_are_the_declared_ones() -> None:
    assert (ROOT / "docs" / "columns.md").read_text() == columns.markdown_dictionary(), \
        "docs/columns.md is stale: python -c 'import harness.columns as c; print(c.markdown_dictionary(), end=\"\")' > docs/columns.md"


def test_a_creation_below_resolution_prints_as_a_bound_everywhere() -> None:
    """The digits reference's int8 and bf16 creations (0.3-5 ms of work, padded to
    0.1 s) keep their padded gross as an upper bound: flagged in the typed table, ≤ in
    markdown, $\\le$ in LaTeX, and train s is the work's own seconds, not the padding."""
    from harness import latex, render
    from harness import finished
    from harness.lifecycle import carbon_from
    from harness.comparable import load_run_dirs

    recs, _ = load_run_dirs([ROOT / "results" / "reference" / "digits"])
    table = finished.table(recs, carbon_from()).set_index("variant_id", drop=False)
    for vid in ("cnn.int8", "cnn.bf16"):
        row = table.loc[vid]
        assert row["train_J_is_bound"] is True or bool(row["train_J_is_bound"])
        assert row["train_s"] < 0.01  # the work's milliseconds, not the 0.102 s window
        assert render.creation_text(row, "train_J").startswith("≤ ")
    assert not bool(table.loc["cnn", "train_J_is_bound"])  # absence: a measured training is a value
    assert not render.creation_text(table.loc["cnn"], "train_J").startswith("≤")
    tex = latex.paper_latex(table.reset_index(drop=True), [], "digits", ["variant_id", "train_J"])
    assert tex.count("$\\leq$") >= 2


def test_sparsity_has_one_denominator_for_every_technique() -> None:
    """SST-2 prune90 showed 90.0% (of Linear weights) while heads1 showed 1.5% (of all
    parameters). Now every pruned row: the share of its parent's parameters that are zero
    or removed; rows that were not pruned have none."""
    from harness.comparable import load_run_dirs
    from harness.table import build_table

    recs, _ = load_run_dirs([ROOT / "results" / "reference" / "sst2"])
    t = build_table(recs).set_index("variant_id")
    parent = t.loc["bert_tiny", "params"]
    for vid in ("bert_tiny.prune50", "bert_tiny.prune90", "bert_tiny.heads1"):
        assert t.loc[vid, "sparsity"] == pytest.approx(1 - t.loc[vid, "nonzero_params"] / parent)
    assert t.loc["bert_tiny.prune90", "sparsity"] < 0.1  # the embeddings, most of BERT-tiny, stay dense
    assert pd.isna(t.loc["bert_tiny.int8", "sparsity"]) and pd.isna(t.loc["bert_tiny", "sparsity"])  # absence


def test_an_inference_window_over_power_prints_as_a_bound_everywhere(monkeypatch, tmp_path: Path) -> None:
    """A pooled inference window the monitor kept as an upper bound: the row's J/inference,
    its carbon and its lifecycle figures are flagged (csv/parquet), printed ≤ (markdown),
    $\\leq$ (LaTeX), and drawn hollow and named a bound in the plots; the other rows not."""

    from harness import latex, plots, render
    from harness import finished
    from harness.lifecycle import carbon_from
    from harness.comparable import load_run_dirs

    recs, _ = load_run_dirs([ROOT / "results" / "reference" / "digits"])
    planted = next(r for r in recs if r.variant_id == "cnn.ort" and r.ok)
    planted.inference.windows[0].below_resolution = True
    table = finished.table(recs, carbon_from()).set_index("variant_id", drop=False)
    row, other = table.loc["cnn.ort"], table.loc["cnn"]
    assert bool(row["J_per_inference_is_bound"]) and bool(row["lifecycle_is_bound"])
    assert not bool(other["J_per_inference_is_bound"]) and not bool(other["lifecycle_is_bound"])  # absence
    cells = dict(render.MAIN + render.COST)
    bounded = [name for name in cells if name.startswith(("J/inference gross", "J/inference net", "J at "))
               or name == "gCO2e per 1e6 queries (g)"]
    assert len(bounded) == 6 and all(cells[name](row).startswith("≤ ") for name in bounded)
    assert not cells["lineage train J (J)"](row).startswith("≤")  # its creation is a value
    assert cells["correct/J (1/J)"](row).startswith("≥ ")  # accuracy over an upper bound
    assert not any(cells[name](other).startswith("≤") for name in bounded)
    tex = latex.paper_latex(table.reset_index(drop=True), [], "digits",
                             ["variant_id", "J_per_inference", "correct_per_J"])
    assert tex.count("$\\leq$") == 1 and tex.count("$\\geq$") == 1
    style = plots.Style.of(table)
    figures = [plots.accuracy_vs_energy(table.reset_index(drop=True), style),
               plots.lifecycle_energy(table.reset_index(drop=True), style)]
    labels = [t.get_text() for fig in figures for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]
    assert sum("cnn.ort (" in x and "upper bound" in x for x in labels) == 2
    assert not any(x.startswith("cnn (") and "upper bound" in x for x in labels)


def test_the_footnotes_say_what_lineage_holds() -> None:
    """The sweep's lineage holds its trials' validation passes (tuning J): its footnote
    must not say they are never inside lineage train J; a suite without a search may."""
    from harness import finished
    from harness.lifecycle import carbon_from
    from harness.report import curve_notes
    from harness.comparable import load_run_dirs

    said = {}
    for name in ("sst2_sweep", "digits"):
        recs, _ = load_run_dirs([ROOT / "results" / "reference" / name])
        table = finished.table(recs, carbon_from())
        assert table["J_to_target_seeds_reached"].notna().any()
        said[name] = " ".join(curve_notes(recs, table))
    assert "nor inside lineage train J" not in said["sst2_sweep"]
    assert "lineage train J holds a search's trials" in said["sst2_sweep"]
    assert "nor inside lineage train J" in said["digits"]  # absence: digits searches nothing


def test_every_prose_figure_is_computed_from_the_records() -> None:
    """results/reference/README.md, the history folders' show-after-nightNN.txt and the
    figure blocks of README.md and docs/ are what benchmarks/scripts/reference_readme.py
    computes from the committed records and databases; a hand-edited figure fails here.
    Planted: one digit changed in a copy of a block is seen as stale."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("reference_readme",
                                                  ROOT / "benchmarks" / "scripts" / "reference_readme.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = module.build()
    assert ROOT / "results" / "reference" / "README.md" in files
    assert any(p.parent.name == "history-work" for p in files)
    assert {ROOT / "docs" / "ladder-and-runtimes.md", ROOT / "docs" / "curves-sweeps-appendix.md"} <= set(files)
    stale = [str(p.relative_to(ROOT)) for p, text in files.items() if not p.exists() or p.read_text() != text]
    assert not stale, f"stale: {stale}; run python benchmarks/scripts/reference_readme.py"
    readme = files[ROOT / "results" / "reference" / "README.md"]
    assert "{{" not in readme
    planted = re.sub(r"\d", "7", readme, count=1) if re.search(r"\d", readme) else readme + "7"
    assert planted != readme  # what a hand edit does: the check above would name the file


def test_every_committed_table_has_todays_columns_and_its_provenance() -> None:
    """The committed references carry exactly the declared columns (a new run and a
    reference concatenate in polars, vertically), and each row says which run, commit,
    machine, profile and version it comes from."""
    import polars as pl

    names = columns.names()
    frames = []
    for folder in REFERENCES:
        parquet = pd.read_parquet(folder / "table.parquet")
        assert list(parquet.columns) == names, folder.name
        assert list(pd.read_csv(folder / "table.csv", nrows=0).columns) == names, folder.name
        for col in ("run_id", "git_commit", "machine", "profile", "started_at", "joulebench_version"):
            assert parquet[col].notna().all(), (folder.name, col)
        frames.append(pl.read_parquet(folder / "table.parquet"))
    together = pl.concat(frames, how="vertical")
    assert together.height == sum(f.height for f in frames) and together["run_id"].n_unique() == len(REFERENCES)
    # every committed table, its CSV read with types inferred from the text: a boolean is
    # never null (an all-empty column reads as text and breaks a vertical concat), a
    # number is a number, and they all stack
    committed = sorted((ROOT / "results" / "reference").rglob("table.csv"))
    bools = [c.name for c in columns.COLUMNS if c.kind == "bool"]
    for f in committed:
        assert not pd.read_parquet(f.with_suffix(".parquet"))[bools].isna().any().any(), f
    stacked = pl.concat([pl.read_csv(f, infer_schema_length=None) for f in committed], how="vertical")
    assert stacked.height == sum(len(pd.read_csv(f)) for f in committed)
    assert all(stacked.schema[c] == pl.Boolean for c in bools)


def test_noisy_rows_are_one_warning_naming_them() -> None:
    """A CV warning per row repeated one sentence eleven times; it is one line naming the rows."""
    from harness import report
    from harness.comparable import load_run_dirs
    from harness import finished
    from harness.lifecycle import carbon_from
    from harness.table import CV_WARN

    recs, _ = load_run_dirs([REFERENCES[0]])
    table = finished.table(recs, carbon_from())
    noisy = table[table["J_per_inference_cv"] > CV_WARN]
    warnings = [n for n in report.footnotes(recs, table, carbon_from()) if "J/inference CV above" in n]
    if len(noisy):
        assert len(warnings) == 1 and all(v in warnings[0] for v in noisy["variant_id"])
    quiet = table.assign(J_per_inference_cv=0.01)
    assert not [n for n in report.footnotes(recs, quiet, carbon_from()) if "J/inference CV above" in n]  # absence


def _texts(fig) -> list[tuple[str, object]]:
    """Every piece of text drawn in ``fig`` with its box on the canvas (a legend as one)."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        found = [*ax.texts, ax.title, ax.xaxis.label, ax.yaxis.label]
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            found += [tick.label1 for tick in axis.get_major_ticks() + axis.get_minor_ticks()
                      if tick.label1.get_visible() and lo <= tick.get_loc() <= hi]
        out += [(t.get_text(), t.get_window_extent(renderer)) for t in found if t.get_visible() and t.get_text()]
        if ax.get_legend() is not None:
            out.append(("legend", ax.get_legend().get_window_extent(renderer)))
    return out


def overlapping(fig) -> list[tuple[str, str]]:
    """Pairs of texts whose boxes overlap by more than a pixel each way."""
    boxes = _texts(fig)
    return [(a, b) for i, (a, x) in enumerate(boxes) for b, y in boxes[i + 1:]
            if min(x.x1, y.x1) - max(x.x0, y.x0) > 1 and min(x.y1, y.y1) - max(x.y0, y.y0) > 1]


def _legend_colours(fig) -> dict[str, tuple]:
    from matplotlib.colors import to_rgba

    out = {}
    for ax in fig.axes:
        leg = ax.get_legend()
        for text, handle in zip(leg.get_texts() if leg else [], leg.legend_handles if leg else []):
            colour = handle.get_color() if hasattr(handle, "get_color") else handle.get_facecolor()
            out[text.get_text().split(" (")[0]] = to_rgba(colour)
    return out


@pytest.mark.parametrize("ref", ["digits", "sst2", "sst2_sweep"])
def test_the_reference_figures_are_readable(ref: str, tmp_path: Path, monkeypatch) -> None:
    """Every figure of a committed reference, as the report draws it: no two texts
    overlap (tick labels, direct labels, titles, legends), no two variants share a colour,
    and a variant has one colour in every figure; each PNG has its PDF twin."""
    from harness import plots
    from harness import report as report_mod

    report_mod.write([ROOT / "results" / "reference" / ref], tmp_path / "real")
    pngs = sorted(p.stem for p in (tmp_path / "real").glob("*.png"))
    assert pngs and pngs == sorted(p.stem for p in (tmp_path / "real").glob("*.pdf"))
    drawn: dict = {}
    monkeypatch.setattr(plots, "save", lambda figures, target: drawn.update(figures))
    report_mod.write([ROOT / "results" / "reference" / ref], tmp_path / "again")
    colours: dict[str, tuple] = {}
    for name, fig in drawn.items():
        assert overlapping(fig) == [], name
        mine = {k: v for k, v in _legend_colours(fig).items() if k not in ("Pareto frontier", "sweep trials")}
        assert len(set(mine.values())) == len(mine), name  # one colour per variant
        for k, v in mine.items():
            assert colours.setdefault(k, v) == v, (name, k)  # the same in every figure


def test_the_overlap_check_sees_overlapping_text() -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.text(0.5, 0.5, "cnn.prune50")
    assert overlapping(fig) == []
    ax.text(0.51, 0.5, "cnn.int8")
    assert overlapping(fig) == [("cnn.prune50", "cnn.int8")]
    plt.close(fig)


def test_a_p_value_prints_the_same_in_every_format(reports: list[Path]) -> None:
    """One text per p (stats.p_text): the markdown's, and in LaTeX the same escaped."""
    from harness import stats
    from harness.latex import tex_escape

    seen = 0
    for folder in reports:
        table = pd.read_parquet(folder / "table.parquet")
        md, tex, full = ((folder / n).read_text().replace("\\allowbreak{}", "") for n in ("table.md", "table.tex",
                                                                                "table_full.tex"))
        for r in table[table["delta_p"].notna()].itertuples():
            text = stats.p_text(r.delta_p, r.delta_test)
            assert text in md and tex_escape(text) in tex and tex_escape(text) in full, (folder.name, text)
            seen += 1
    assert seen > 10


def mixed_notation(md: str) -> list[str]:
    """Markdown table columns whose numbers mix plain and scientific notation."""
    bad = []
    for block in re.findall(r"((?:^\|.*\|\n)+)", md, re.M):
        lines = [ln for ln in block.splitlines() if not re.match(r"^\|[-| ]+\|$", ln)]
        rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]
        for k, head in enumerate(rows[0]):
            kinds = {("e" in t) for r in rows[1:] if k < len(r)
                     for t in re.findall(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]\d+)?(?![\w.])", r[k])
                     if float(t) != 0}
            if len(kinds) > 1:
                bad.append(head)
    return bad


def test_a_column_has_one_number_format(reports: list[Path]) -> None:
    """table.md never mixes 4417 and 8.34e+04 in one column."""
    for folder in reports:
        assert mixed_notation((folder / "table.md").read_text()) == [], folder.name
    planted = "| a | b |\n|---|---|\n| 4417 | 1 |\n| 8.34e+04 | 2 |\n"
    assert mixed_notation(planted) == ["a"]
