"""The history database for real: the committed reference runs plus synthetic nights
with a planted 20% energy step, a planted one-night outlier and a planted accuracy drop
(tests/nights.py); idempotent and transactional imports (a SIGKILL at several points);
series per machine and method; bad input."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness import history
from harness import records as records_mod
from harness.cli import main
from harness.history import db as db_mod, schema as schema_mod, series as series_mod
from tests.conftest import ROOT
from tests.nights import ACC_STEP_NIGHT, N_NIGHTS, OUTLIER_NIGHT, STEP_NIGHT, make_night, planted

REFERENCES = [ROOT / "results" / "reference" / name for name in ("digits", "sst2", "sst2_sweep")]


@pytest.fixture(scope="module")
def nights(tmp_path_factory) -> list[Path]:
    """30 nights after the reference, seed 0 only (the reference night has its 3 seeds)."""
    return planted(tmp_path_factory.mktemp("nights"), seeds=(0,))


@pytest.fixture(scope="module")
def light(tmp_path_factory) -> list[Path]:
    """Three one-seed nights: quick to import, for the tests that import again and again."""
    out = tmp_path_factory.mktemp("light")
    return [make_night(out, night, seeds=(0,)) for night in range(3)]


@pytest.fixture(scope="module")
def one_run_db(tmp_path_factory, light: list[Path]) -> Path:
    path = tmp_path_factory.mktemp("one") / "history.sqlite"
    history.add(path, [make_night(tmp_path_factory.mktemp("first"), 10, seeds=(0,))])
    return path


@pytest.fixture(scope="module")
def base_db(tmp_path_factory, nights: list[Path]) -> Path:
    """The reference runs and the 30 planted nights, imported by the CLI."""
    path = tmp_path_factory.mktemp("db") / "history.sqlite"
    assert main(["history", "add", *map(str, REFERENCES), *map(str, nights), "--db", str(path)]) == 0
    return path


def copy_db(base: Path, tmp_path: Path) -> Path:
    return Path(shutil.copy(base, tmp_path / "history.sqlite"))


def dump(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def verdicts(path: Path, variant: str) -> series_mod.Series:
    found = series_mod.build(history.load(path, with_records=False).points, suite="digits", variant=variant)
    assert len(found) == 1, [s.machine_label for s in found]
    return found[0]


def test_planted_step_is_found_at_its_night_and_the_outlier_is_not(base_db: Path, capsys) -> None:
    # the reference run is the series' first night: night k of the planted ones is index k + 1
    cnn = verdicts(base_db, "cnn")
    assert len(cnn.nights) == N_NIGHTS + 1
    energy = cnn.verdicts["J_per_inference"]
    assert [s.index for s in energy.steps] == [STEP_NIGHT + 1]
    assert energy.steps[0].regression and 0.15 < energy.steps[0].change < 0.25
    assert OUTLIER_NIGHT + 1 not in [s.index for s in energy.steps]
    assert not cnn.verdicts["accuracy"].steps  # cnn's accuracy never moved
    mlp = verdicts(base_db, "mlp")
    assert not mlp.verdicts["J_per_inference"].steps  # noise only
    acc = mlp.verdicts["accuracy"]
    assert [s.index for s in acc.steps] == [ACC_STEP_NIGHT + 1] and acc.steps[0].regression
    assert acc.steps[0].change == pytest.approx(-0.03, abs=0.003)
    # show: the step's night and commit are printed; the latest night starts nothing: exit 0
    assert main(["history", "show", "--db", str(base_db), "--suite", "digits"]) == 0
    out = capsys.readouterr().out
    cnn_line = next(line for line in out.splitlines() if line.lstrip().startswith("cnn "))
    assert f"{STEP_NIGHT:02d}c0ffe" in cnn_line and "worse" in cnn_line
    assert f"{OUTLIER_NIGHT:02d}c0ffe" not in out
    assert "no series' latest night starts or confirms a regression step" in out


def keep_nights(path: Path, last: int) -> None:
    """Drop the planted nights after night ``last`` (ON DELETE CASCADE takes their rows)."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA foreign_keys = ON")
    for (run_id,) in con.execute("SELECT run_id FROM runs WHERE run_id LIKE '%-night-%'").fetchall():
        if int(run_id.rsplit("-", 1)[1]) > last:
            con.execute("DELETE FROM runs WHERE run_id=?", (run_id,))
    con.commit()
    con.close()


@pytest.mark.parametrize("last, code, flagged", [
    (STEP_NIGHT, 1, "cnn J/inference"),  # the night the step starts: the gate closes
    (STEP_NIGHT - 1, 0, None),  # the night before: open
    (STEP_NIGHT + 1, 1, "cnn J/inference"),  # the night after: the fit confirms the step, the gate closes again
    (STEP_NIGHT + 2, 0, None),  # two nights after: reported twice already, the gate is open
    (OUTLIER_NIGHT, 1, "cnn J/inference"),  # a wild latest night cannot be told from a step yet ...
    (OUTLIER_NIGHT + 1, 0, None),  # ... and the next night withdraws it: no step
    (ACC_STEP_NIGHT, 1, "mlp accuracy"),
])
def test_show_exits_1_when_the_latest_night_starts_or_confirms_a_regression(base_db: Path, tmp_path: Path, capsys, last: int,
                                                                code: int, flagged: str | None) -> None:
    path = copy_db(base_db, tmp_path)
    keep_nights(path, last)
    assert main(["history", "show", "--db", str(path), "--suite", "digits"]) == code
    out = capsys.readouterr().out
    regressions = [line for line in out.splitlines() if line.startswith("REGRESSION")]
    if flagged:
        assert len(regressions) == 1 and f"digits (full) {flagged}" in regressions[0], regressions
    else:
        assert not regressions
    if last == OUTLIER_NIGHT + 1:
        assert not verdicts(path, "cnn").verdicts["J_per_inference"].steps


def test_reimport_is_a_no_op_and_a_grown_run_replaces_itself(base_db: Path, nights: list[Path], tmp_path: Path,
                                                            capsys) -> None:
    path = copy_db(base_db, tmp_path)
    before = dump(path)
    copy = Path(shutil.copytree(nights[3], tmp_path / "elsewhere"))  # the same run, copied to another folder
    assert main(["history", "add", str(nights[3]), str(REFERENCES[0]), str(copy), "--db", str(path)]) == 0
    err = capsys.readouterr().err
    assert err.count("unchanged") == 2 and "stored once" in err
    assert dump(path) == before
    # a run whose records grew (resumed after an interruption) is stored once, whole
    partial = tmp_path / "partial"
    shutil.copytree(nights[5], partial)
    lines = (partial / "records.jsonl").read_text().splitlines(keepends=True)
    (partial / "records.jsonl").write_text("".join(lines[:-1]))
    fresh = tmp_path / "fresh.sqlite"
    assert main(["history", "add", str(partial), "--db", str(fresh)]) == 0
    assert main(["history", "add", str(nights[5]), "--db", str(fresh)]) == 0
    assert "updated" in capsys.readouterr().err
    h = history.load(fresh)
    assert len(h.runs) == 1 and len(h.records) == len(lines)


def _import_and_die(db: Path, runs: list[Path], stage: str, at: int) -> subprocess.CompletedProcess:
    code = ("import os, signal, sys\n"
            "from harness.history import imports\n"
            "def progress(stage, n):\n"
            f"    if stage == {stage!r} and n >= {at}:\n"
            "        os.kill(os.getpid(), signal.SIGKILL)\n"
            f"imports.add({str(db)!r}, {[str(r) for r in runs]!r}, progress=progress)\n")
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("stage, at", [("record", 1), ("record", 3), ("run", 1), ("commit", 0)])
def test_a_kill_during_import_leaves_the_database_unchanged(light: list[Path], one_run_db: Path, tmp_path: Path,
                                                            stage: str, at: int) -> None:
    path = copy_db(one_run_db, tmp_path)
    before = dump(path)
    proc = _import_and_die(path, light, stage, at)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    con = sqlite3.connect(path)  # readable, whole, and as it was (the hot journal rolls back)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    assert dump(path) == before
    assert len(history.load(path).runs) == 1
    history.add(path, light)  # and the next import goes through
    assert len(history.load(path).runs) == 4


def test_a_killed_first_import_leaves_no_half_made_database(light: list[Path], tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    proc = _import_and_die(path, light[:2], "record", 3)
    assert proc.returncode == -signal.SIGKILL
    assert not path.exists() or not dump(path) or dump(path) == ["BEGIN TRANSACTION;", "COMMIT;"]
    history.add(path, light[:2])
    assert len(history.load(path).runs) == 2


def test_two_machines_and_two_methods_make_separate_series(tmp_path: Path) -> None:
    runs = []
    for night in range(6):
        runs.append(make_night(tmp_path / "a", night, {"cnn": 1.0}, seeds=(0,)))
        # another machine, whose cnn got 30% dearer from night 3: its own series sees the step
        runs.append(make_night(tmp_path / "b", night, {"cnn": 1.3 if night >= 3 else 1.0}, host="gpu-box",
                               seeds=(0,)))
        runs.append(make_night(tmp_path / "c", night, {"cnn": 2.0}, method="rapl", seeds=(0,)))  # another method
    path = tmp_path / "history.sqlite"
    history.add(path, runs)
    found = series_mod.build(history.load(path).points, suite="digits", variant="cnn")
    assert sorted((s.machine_label.split(" ")[0], s.meter) for s in found) == [
        ("gpu-box", "estimate"), ("vm", "estimate"), ("vm", "rapl")]
    assert all(len(s.nights) == 6 for s in found)
    by = {(s.machine_label.split(" ")[0], s.meter): s for s in found}
    assert [st.index for st in by[("gpu-box", "estimate")].verdicts["J_per_inference"].steps] == [3]
    assert not by[("vm", "estimate")].verdicts["J_per_inference"].steps
    assert not by[("vm", "rapl")].verdicts["J_per_inference"].steps  # 2x on every night: a level, not a step


def test_load_gives_dataframes_and_the_readme_query_runs_in_the_sqlite3_shell(base_db: Path) -> None:
    h = history.load(base_db)
    assert isinstance(h.points, pd.DataFrame)
    assert len(h.runs) == len(REFERENCES) + N_NIGHTS
    assert {"started_at", "git_commit", "machine", "meter", "J_per_inference", "accuracy"} <= set(h.points.columns)
    assert set(h.windows["phase"]) >= {"train", "inference@128", "curve_eval"}
    assert (h.windows["energy_j"] >= 0).all()
    rec = json.loads(h.records["record"].iloc[0])  # whole records, as JSON text
    assert rec["schema"] == records_mod.SCHEMA  # upgraded on read, stored whole
    env = json.loads(h.runs["environment"].iloc[0])
    assert env["meter"] == "estimate"
    if not shutil.which("sqlite3"):
        pytest.skip("no sqlite3 shell here (Debian: apt-get install sqlite3)")
    query = ("SELECT started_at, git_commit, J_per_inference FROM points "
             "WHERE suite = 'digits' AND variant_id = 'cnn' ORDER BY started_at;")
    docs = (ROOT / "docs" / "history.md").read_text()
    assert query in docs  # the query the documentation shows is the one tested here
    out = subprocess.run(["sqlite3", str(base_db), query], capture_output=True, text=True, check=True).stdout
    assert len(out.splitlines()) == N_NIGHTS + 1


def test_schema_upgrades_on_open_all_steps_or_none(one_run_db: Path, tmp_path: Path, monkeypatch) -> None:
    path = copy_db(one_run_db, tmp_path)
    now = schema_mod.SCHEMA
    monkeypatch.setattr(schema_mod, "SCHEMA", now + 1)
    monkeypatch.setattr(schema_mod, "MIGRATIONS", {now: lambda con: (con.execute("ALTER TABLE runs ADD COLUMN note TEXT"),
                                                                 con.execute("SELECT * FROM no_such_table"))})
    with pytest.raises(Exception):  # a migration that fails leaves the version it found, untouched
        db_mod.connect(path)
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(now)
    assert "note" not in [c[1] for c in con.execute("PRAGMA table_info(runs)")]
    con.close()
    monkeypatch.setattr(schema_mod, "MIGRATIONS", {now: lambda con: con.execute("ALTER TABLE runs ADD COLUMN note TEXT")})
    db_mod.connect(path).close()
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(now + 1)
    assert "note" in [c[1] for c in con.execute("PRAGMA table_info(runs)")]
    con.close()


def test_a_schema_1_history_is_upgraded_to_the_tables_names(tmp_path: Path) -> None:
    """A database made before the results took the table's column names: opened, it is
    upgraded (renamed columns, the JSON of every column), and reads as a new one."""
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    ddl = schema_mod.DDL
    for old, new in schema_mod.RENAMED:
        ddl = ddl.replace(f"{new} REAL", f"{old} REAL")
    ddl = ddl.replace("    columns TEXT,\n", "")
    con.executescript(ddl)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.commit()
    con.close()
    db_mod.connect(path).close()
    names = [c[1] for c in sqlite3.connect(path).execute("PRAGMA table_info(results)")]
    assert {"J_per_inference_within_run_ci95_lo", "energy_uncertainty", "train_J", "columns"} <= set(names)
    assert "uncertainty_rel" not in names


def one_line_error(capsys, needle: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("joulebench: error:") and needle in err[0], err


def test_bad_input_is_one_line_and_loses_nothing(base_db: Path, light: list[Path], tmp_path: Path, capsys) -> None:
    run = str(light[0])
    # a file that is not SQLite: refused, never overwritten
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    assert main(["history", "add", run, "--db", str(notes)]) == 2
    one_line_error(capsys, "is not a SQLite database")
    assert notes.read_text() == "my notes\n"
    assert main(["history", "show", "--db", str(notes)]) == 2
    one_line_error(capsys, "is not a SQLite database")
    # a SQLite file of something else
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    assert main(["history", "add", run, "--db", str(other)]) == 2
    one_line_error(capsys, "not a joulebench history")
    # a newer schema
    newer = copy_db(base_db, tmp_path)
    con = sqlite3.connect(newer)
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    digest = sha(newer)
    for args in (["add", run], ["show"], ["html", "--out", str(tmp_path / "site")]):
        assert main(["history", *args, "--db", str(newer)]) == 2
        one_line_error(capsys, "schema 99, newer than this joulebench reads")
    assert sha(newer) == digest and not (tmp_path / "site").exists()
    # run dirs without records, or not run dirs at all: nothing is imported, not even the good one
    (tmp_path / "good").mkdir()
    good = copy_db(base_db, tmp_path / "good")
    digest = sha(good)
    empty = tmp_path / "empty-run"
    empty.mkdir()
    assert main(["history", "add", run, str(empty), "--db", str(good)]) == 2
    one_line_error(capsys, "holds no records.jsonl")
    (empty / "records.jsonl").write_text("")
    assert main(["history", "add", str(empty), "--db", str(good)]) == 2
    one_line_error(capsys, "holds no complete records")
    assert sha(good) == digest
    # a database path that cannot be written
    assert main(["history", "add", run, "--db", "/proc/self/history.sqlite"]) == 2
    one_line_error(capsys, "history.sqlite")
    if os.geteuid() != 0:  # root writes through a read-only mode bit
        (tmp_path / "ro").mkdir()
        locked = copy_db(base_db, tmp_path / "ro")
        locked.chmod(0o444)
        digest = sha(locked)
        assert main(["history", "add", run, "--db", str(locked)]) == 2
        one_line_error(capsys, "nothing was imported")
        assert sha(locked) == digest
    # no database yet, for show
    assert main(["history", "show", "--db", str(tmp_path / "missing.sqlite")]) == 2
    one_line_error(capsys, "no history database at")
    assert not (tmp_path / "missing.sqlite").exists()


def _chromium_or_skip() -> str:
    """Debian's Chromium and the playwright package (the README's test command installs
    both); without them this test is skipped, except in CI, where it fails."""
    miss = pytest.fail if os.environ.get("CI") else pytest.skip
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        miss("playwright is not installed: pip install -e '.[test]'")
    exe = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(exe).exists():
        miss("no Chromium here: apt-get install chromium (Debian)")
    return exe


def test_dashboard_renders_in_headless_chromium(base_db: Path, tmp_path: Path) -> None:
    import matplotlib.image
    import re

    exe = _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    site = tmp_path / "site"
    assert main(["history", "html", "--db", str(base_db), "--out", str(site)]) == 0
    text = (site / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<(script|link|img|iframe)[^>]*\b(src|href)=", text)  # nothing to fetch: all inline
    assert len(text.encode()) < 1_000_000  # a page well under a megabyte
    expected = series_mod.build(history.load(base_db, with_records=False).points)
    errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.on("console", lambda m: errors.append(m.text) if m.type in ("error", "warning") else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(site.joinpath("index.html").as_uri())
            page.wait_for_selector(f"#series-{len(expected) - 1} svg", timeout=60_000)
            # the table: one row per series, the variant first
            rows = page.locator("#latest tbody tr")
            assert rows.count() == len(expected)
            names = [rows.nth(i).locator("td").nth(0).inner_text() for i in range(rows.count())]
            assert sorted(names) == sorted(s.variant_id for s in expected)
            # sorting: J/inference ascending, then descending
            heads = page.locator("#latest th").all_inner_texts()
            column = f"#latest tbody tr td:nth-child({heads.index('J/inference') + 1})"
            header = page.locator("#latest th").nth(heads.index("J/inference"))
            header.click()
            values = [float(v) for v in page.locator(column).evaluate_all("cells => cells.map(c => c.dataset.sort)")]
            assert values == sorted(values)
            header.click()
            values = [float(v) for v in page.locator(column).evaluate_all("cells => cells.map(c => c.dataset.sort)")]
            assert values == sorted(values, reverse=True)
            verdicts = page.locator("#latest tbody tr td.verdict").all_inner_texts()
            assert sum("1 step(s)" in v for v in verdicts) == 2  # cnn's energy step, mlp's accuracy drop
            # the verdicts and numbers are on the first screen of a 1280 px window
            page.set_viewport_size({"width": 1280, "height": 900})
            box = page.locator("#latest th").nth(heads.index("change", heads.index("accuracy"))).bounding_box()
            assert box["x"] + box["width"] <= 1280
            # every figure names its energy method, puts one point per night labelled with its
            # date and commit, and draws its steps and commit changes where they are
            figures = page.evaluate("""() => Array.from(document.querySelectorAll('.figure')).map(f => ({
                text: f.querySelector('svg').textContent,
                steps: Array.from(f.querySelectorAll('[id*="-step-"]')).map(e => e.id),
                commits: f.querySelectorAll('[id*="-commit-"]').length}))""")
            assert len(figures) == len(expected)
            for fig, s in zip(figures, expected):
                assert f"energy method {s.meter}" in fig["text"] and f"J/inference ({s.meter})" in fig["text"]
                date, clock, commit = night_label(s).split(" ", 2)
                assert f"{date[5:]} {clock}" in fig["text"] and commit in fig["text"]  # the latest night's label
            by_variant = {s.variant_id: f for f, s in zip(figures, expected) if s.suite == "digits"}
            cnn = by_variant["cnn"]["steps"]
            assert len(cnn) == 1 and cnn[0].endswith(f"-step-J_per_inference-{STEP_NIGHT + 1}"), cnn
            assert len(by_variant["mlp"]["steps"]) == 1  # its accuracy step
            assert not by_variant["cnn.int8"]["steps"]  # one night: no step
            for fig, s in zip(figures, expected):  # a marker (in both panels) wherever the commit changed
                shas = list(s.nights["git_commit"].fillna(""))
                assert fig["commits"] == 2 * sum(a != b for a, b in zip(shas, shas[1:])), s.variant_id
            shot = tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=False)
        finally:
            browser.close()
    assert not errors, errors
    assert all(u.startswith("file://") for u in requests), [u for u in requests if not u.startswith("file://")]
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] >= 900 and pixels[..., :3].std() > 0.05  # drawn, not a blank page
    print(f"dashboard screenshot: {shot}")


def night_label(s: series_mod.Series) -> str:
    from harness.history.show import night

    return night(s, len(s.nights) - 1)


def test_a_merged_run_takes_the_place_of_its_shards(tmp_path: Path, capsys) -> None:
    from harness.merge import merge

    shard1 = make_night(tmp_path / "s1", 0)
    shard2 = make_night(tmp_path / "s2", 0, host="vm")  # same night, its own identity
    env2 = json.loads((shard2 / "environment.json").read_text())
    env2["run_id"] = "shard-two"
    (shard2 / "environment.json").write_text(json.dumps(env2))
    merged = tmp_path / "merged"
    merge([shard1, shard2], merged)
    env = json.loads((merged / "environment.json").read_text())
    assert sorted(env["merged_run_ids"]) == sorted([env2["run_id"], "vm-None-night-0"])
    assert env["run_id"] not in env["merged_run_ids"]
    path = tmp_path / "history.sqlite"
    history.add(path, [shard1, shard2])
    assert len(history.load(path).runs) == 2
    history.add(path, [merged])  # replaces both shards
    assert history.load(path).runs["run_id"].tolist() == [env["run_id"]]
    messages = history.add(path, [shard1])  # a shard of a stored merged run is not stored again
    assert "not stored again" in messages[0] and len(history.load(path).runs) == 1


FIVE = ("cnn", "mlp", "cnn.int8", "cnn.prune50", "mlp.distill")


def drifting_nights(out: Path, n: int, drift_cv: float, step: dict[str, float], at: int, seed: int = 1) -> list[Path]:
    """Nights whose machine drift multiplies every variant alike (``drift_cv``), with 2%
    noise per variant, and ``step[v]`` applied to v from night ``at``."""
    rng = np.random.default_rng(seed)
    runs = []
    for night in range(n):
        common = float(np.exp(drift_cv * rng.standard_normal()))
        energy = {v: common * (1 + 0.02 * rng.standard_normal()) * (step.get(v, 1.0) if night >= at else 1.0)
                  for v in FIVE}
        runs.append(make_night(out, night, energy, variants=FIVE, seeds=(0,)))
    return runs


def test_one_variant_stepping_under_common_drift_is_seen_against_the_others(tmp_path: Path) -> None:
    """25% drift common to a night's variants swamps a 20% step in cnn's raw series; its
    series against the night's other variants finds it, at its night, and no other."""
    path = tmp_path / "history.sqlite"
    history.add(path, drifting_nights(tmp_path / "n", 16, 0.25, {"cnn": 1.2}, at=10))
    found = {s.variant_id: s for s in series_mod.build(history.load(path).points)}
    cnn = found["cnn"].verdicts
    assert not cnn["J_per_inference"].steps
    assert [s.index for s in cnn["J_per_inference_rel"].steps] == [10]
    assert cnn["J_per_inference_rel"].steps[0].regression
    assert 0.15 < cnn["J_per_inference_rel"].steps[0].change < 0.25
    for v in FIVE[1:]:
        assert not found[v].verdicts["J_per_inference_rel"].steps, v
    # and its gate, on the night the step begins
    points = history.load(path).points
    first = series_mod.build(points[points["started_at"] <= sorted(set(points["started_at"]))[10]])
    assert [s.variant_id for s in first if s.latest_regression] == ["cnn"]
    assert next(s for s in first if s.variant_id == "cnn").latest_regression == ["J_per_inference_rel"]


def test_a_step_in_every_variant_is_the_raw_series_job_not_the_relative_one(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite"
    history.add(path, drifting_nights(tmp_path / "n", 12, 0.01, {v: 1.2 for v in FIVE}, at=6))
    for s in series_mod.build(history.load(path).points):
        assert [st.index for st in s.verdicts["J_per_inference"].steps] == [6], s.variant_id
        assert not s.verdicts["J_per_inference_rel"].steps, s.variant_id


def test_a_five_percent_step_in_instructions_closes_the_gate_on_its_night_and_the_next(tmp_path: Path) -> None:
    """Under 25% energy drift, a +5% step in cnn's counted work from night 6: the
    instructions series closes the gate on night 6 (new step) and night 7 (confirmed),
    and on no A/A night, for no other variant."""
    rng = np.random.default_rng(3)
    runs = []
    for night in range(9):
        common = float(np.exp(0.25 * rng.standard_normal()))
        runs.append(make_night(tmp_path / "n", night, {v: common for v in FIVE}, variants=FIVE, seeds=(0,),
                               work={"cnn": 1.05 if night >= 6 else 1.0}))
    path = tmp_path / "history.sqlite"
    history.add(path, runs)
    points = history.load(path, with_records=False).points
    nights_at = sorted(set(points["started_at"]))
    for last in range(3, 9):
        found = {s.variant_id: s for s in series_mod.build(points[points["started_at"] <= nights_at[last]])}
        gated = sorted(v for v, s in found.items() if "instructions_per_inference" in s.latest_regression)
        assert gated == (["cnn"] if last in (6, 7) else []), last
    work = found["cnn"].verdicts["instructions_per_inference"]
    assert [st.index for st in work.steps] == [6] and 0.045 < work.steps[0].change < 0.055
    # a history without counted work gives no instructions verdict (not "too few nights")
    plain = series_mod.build(history.load(path, with_records=False).points.assign(columns=None))
    assert all("instructions_per_inference" not in s.verdicts for s in plain)


def test_a_change_of_measuring_code_is_separated_by_history_report_and_compare_alike(tmp_path: Path) -> None:
    """One planted pair, three readers: eight nights, then a night whose measuring code
    changed (another ``measure_code``) and whose every variant reads +50%. The history
    leaves the earlier nights out of the energy series (no gate), ``report`` refuses to
    pool the two runs, and compare's key names the code; the same +50% at the same
    code closes the gate, pools, and is no code difference (absence)."""
    from harness import comparable, rundir
    from tests.conftest import cli
    from tests.nights import VARIANTS

    before = [make_night(tmp_path / "a", n, seeds=(0,)) for n in range(8)]
    dearer = {v: 1.5 for v in VARIANTS}
    moved = make_night(tmp_path / "b", 8, seeds=(0,), energy=dearer, measure_code="feed" * 4)
    same = make_night(tmp_path / "c", 8, seeds=(0,), energy=dearer)
    gates = {}
    for name, last in (("moved", moved), ("same", same)):
        db = tmp_path / f"{name}.sqlite"
        history.add(db, [*before, last])
        built = series_mod.build(history.load(db).points)
        gates[name] = [s for s in built if "J_per_inference" in s.latest_regression]
        if name == "moved":
            assert all(s.other_code == 8 for s in built)
            out = cli("history", "show", "--db", str(db))
            assert out.returncode == 0 and "ran other measuring code than the latest night" in out.stdout
    assert not gates["moved"] and len(gates["same"]) == len(VARIANTS)
    refused = cli("report", str(before[-1]), str(moved), "--out", str(tmp_path / "r1"))
    assert refused.returncode == 2 and "measured differently" in refused.stderr and "measuring code" in refused.stderr
    assert not (tmp_path / "r1").exists() and "Traceback" not in refused.stderr
    pooled = cli("report", str(before[-1]), str(same), "--out", str(tmp_path / "r2"))
    assert pooled.returncode == 0, pooled.stderr
    assert "code" in comparable.differences([rundir.read(before[-1])], [rundir.read(moved)])
    assert "code" not in comparable.differences([rundir.read(before[-1])], [rundir.read(same)])
