"""Verdicts, frontier odds and break-even intervals on planted records: an SST-2 record
(872 eval examples) copied into variants whose answers and windows are set by hand, so
each decision's right answer is known (and its absence planted beside it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness import decisions, finished
from harness.config import DecideConfig
from harness.records import RunRecord
from tests.conftest import ROOT

SST2 = ROOT / "results" / "reference" / "sst2" / "records.jsonl"


def _template() -> dict:
    for line in SST2.read_text().splitlines():
        rec = json.loads(line)
        if rec["status"] == "ok" and rec["variant_id"] == "bert_tiny" and rec["seed"] == 0:
            return rec
    raise AssertionError("no bert_tiny record in the SST-2 reference")


TEMPLATE = _template()


def planted(vid: str, parent: str | None, wrong: set[int], j: list[float], train_j: float = 10.0,
            suite: str = "s", run: str = "r1") -> RunRecord:
    """A record of ``vid`` answering every eval example right except ``wrong``, with one
    window per J/inference figure in ``j``."""
    rec = json.loads(json.dumps(TEMPLATE))
    labels = rec["eval"]["labels"]
    rec["eval"]["predictions"] = [(1 - y) if i in wrong else y for i, y in enumerate(labels)]
    rec["eval"]["correct"] = len(labels) - len(wrong)
    rec["eval"]["accuracy"] = rec["eval"]["correct"] / len(labels)
    per = rec["inference"]["inferences_per_window"]
    window = rec["inference"]["windows"][0]
    rec["inference"]["windows"] = [{**window, "energy_j": x * per, "net_energy_j": x * per * 0.99} for x in j]
    rec["train"]["window"] = {**rec["train"]["window"], "energy_j": train_j, "net_energy_j": train_j * 0.99,
                              "below_resolution": False}
    rec["train"]["extra_windows"] = {}
    rec.update(variant_id=vid, parent=parent, suite=suite, artifact_key=vid, model_identity=vid, run_key=f"{vid}@seed0",
               variant="baseline" if parent is None else "quantize", inference_sweep=[])
    out = RunRecord.model_validate(rec)
    out.run = run
    return out


def windows(level: float, n: int = 7, spread: float = 0.01, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(level * (1 + rng.uniform(-spread, spread, n)))


def decided(recs: list[RunRecord], cfg: DecideConfig = DecideConfig()):
    return finished.table(recs, decide=cfg).set_index("variant_id")


def test_the_four_verdicts_of_the_issue() -> None:
    """Same predictions and 30% lower J: cheaper, not worse. 2 points lower on 872
    examples at a 1-point margin: cheaper, worse. Equal to its parent: not cheaper.
    Two windows: undecided, naming how many more would decide."""
    base = planted("m", None, set(range(100)), windows(1e-3, seed=1))
    good = planted("m.good", "m", set(range(100)), windows(0.7e-3, seed=2))
    worse = planted("m.worse", "m", set(range(100 + 18)), windows(0.7e-3, seed=3))  # 18/872 = 2.06 points
    same = planted("m.same", "m", set(range(100)), windows(1e-3, seed=4))
    # a suite measured with 2 windows a row (its parent too): a rank test cannot reach 5%
    few_base = planted("m", None, set(range(100)), windows(1e-3, n=2, seed=1), suite="two")
    few = planted("m.few", "m", set(range(100)), windows(0.7e-3, n=2, seed=5), suite="two")
    t = decided([base, good, worse, same])
    few_t = decided([few_base, few])
    assert t.loc["m.good", "verdict"] == decisions.CHEAPER_NOT_WORSE
    assert t.loc["m.worse", "verdict"] == decisions.CHEAPER_WORSE
    assert t.loc["m.same", "verdict"] == decisions.NOT_CHEAPER
    assert few_t.loc["m.few", "verdict"] == "undecided (too few windows: 1 more each would decide)"
    assert t["verdict"].isna()["m"]  # no parent, no verdict
    # the margin decides: at 3 points the 2-point loss is not worse
    loose = decided([base, worse], DecideConfig(accuracy_margin=0.03))
    assert loose.loc["m.worse", "verdict"] == decisions.CHEAPER_NOT_WORSE


def test_too_few_examples_is_undecided_with_a_count() -> None:
    """1 point lower at a 1-point margin: the difference sits at the margin; 0.5 points
    lower with discordant answers both ways: too few examples, a number given."""
    base = planted("m", None, set(range(100)), windows(1e-3, seed=1))
    near = planted("m.near", "m", set(range(10, 114)), windows(0.7e-3, seed=2))  # 104 wrong, 10 right both ways
    t = decided([base, near], DecideConfig(accuracy_margin=0.01))
    assert t.loc["m.near", "verdict"].startswith("undecided (too few examples: about ")


def test_the_frontier_odds() -> None:
    """A dominated variant near 0, a dominating one near 1, two identical up to noise share."""
    base = planted("m", None, set(range(100)), windows(1e-3, seed=1))
    dominated = planted("m.bad", "m", set(range(150)), windows(1.5e-3, seed=2))
    dominating = planted("m.best", "m", set(range(60)), windows(0.5e-3, seed=3))
    twin_a = planted("m.a", "m", set(range(200)), windows(0.2e-3, spread=0.05, seed=4))
    twin_b = planted("m.b", "m", set(range(200)), windows(0.2e-3, spread=0.05, seed=5))
    t = decided([base, dominated, dominating, twin_a, twin_b])
    assert t.loc["m.bad", "p_frontier"] < 0.02 and t.loc["m", "p_frontier"] < 0.02
    assert t.loc["m.best", "p_frontier"] > 0.98
    a, b = t.loc["m.a", "p_frontier"], t.loc["m.b", "p_frontier"]
    assert a + b == pytest.approx(1.0, abs=0.02) and 0.2 < a < 0.8  # the same answers: one of the two each time


def test_break_even_interval_and_no_saving() -> None:
    base = planted("m", None, set(range(100)), windows(1e-3, seed=1), train_j=100.0)
    saves = planted("m.s", "m", set(range(100)), windows(0.5e-3, seed=2), train_j=20.0)
    noise = planted("m.n", "m", set(range(100)), windows(0.998e-3, spread=0.05, seed=3), train_j=20.0)
    t = decided([base, saves, noise])
    lo, point, hi = t.loc["m.s", ["break_even_ci95_lo", "break_even_inferences", "break_even_ci95_hi"]]
    assert lo <= point <= hi and point == pytest.approx(20 / 0.5e-3, rel=0.03)
    assert t.loc["m.s", "break_even_status"] == decisions.PAYS_BACK
    assert t.loc["m.n", "break_even_status"] == decisions.NO_SAVING and np.isnan(t.loc["m.n", "break_even_inferences"])
    assert t.loc["m", "break_even_status"] == decisions.NO_PARENT


def test_an_unknown_or_bounded_creation_is_carried() -> None:
    base = planted("m", None, set(), windows(1e-3, seed=1))
    bounded = planted("m.b", "m", set(), windows(0.5e-3, seed=2))
    bounded.train.window.below_resolution = True
    unknown = planted("m.u", "m", set(), windows(0.5e-3, seed=3))
    unknown.train.source, unknown.train.window = "unknown", None
    t = decided([base, bounded, unknown])
    assert t.loc["m.b", "break_even_status"] == decisions.PAYS_BACK_BOUND
    assert t.loc["m.u", "break_even_status"] == decisions.UNKNOWN_CREATION
    assert np.isnan(t.loc["m.u", "break_even_inferences"])


def test_runs_are_the_energy_unit_across_runs() -> None:
    """Over several runs the rank test compares run medians: two runs a side cannot reach
    5% (1/6 at best), so the verdict says how many more runs would decide."""
    recs = []
    for run in ("r1", "r2"):
        recs += [planted("m", None, set(), windows(1e-3, seed=1), run=run),
                 planted("m.c", "m", set(), windows(0.5e-3, seed=2), run=run)]
    t = decided(recs)
    assert t.loc["m.c", "verdict"] == "undecided (too few runs: 1 more each would decide)"


def env_of(folder: Path):
    """A run folder's environment as the run reader hands it on (rundir.RunDir)."""
    from harness.rundir import RunDir, check_environment

    path = folder / "environment.json"
    return RunDir(folder, [], [], check_environment(json.loads(path.read_text()), path))


def test_decide_settings_come_from_the_suite_and_the_command_line(tmp_path: Path) -> None:
    from harness.errors import UserError

    run = tmp_path / "run"
    run.mkdir()
    (run / "environment.json").write_text(json.dumps(
        {"suite": {"name": "s", "resolved": {"decide": {"accuracy_margin": 0.02}}}}))
    assert finished.decide_settings([env_of(run)])["s"] == DecideConfig(accuracy_margin=0.02)
    assert finished.decide_settings([env_of(run)], {"energy_alpha": 0.01})["s"] == DecideConfig(0.02, 0.05, 0.01)
    (run / "environment.json").write_text(json.dumps(
        {"suite": {"name": "s", "resolved": {"decide": {"accuracy_margin": "__import__('os')"}}}}))
    with pytest.raises(UserError, match="accuracy_margin must be float"):
        finished.decide_settings([env_of(run)])


def write_run(folder: Path, recs: list[RunRecord], run_id: str) -> Path:
    """A run folder of planted records, with the SST-2 reference's environment."""
    folder.mkdir(parents=True)
    env = json.loads((SST2.parent / "environment.json").read_text())
    env["run_id"] = run_id
    (folder / "environment.json").write_text(json.dumps(env))
    (folder / "records.jsonl").write_text("".join(r.to_json() + "\n" for r in recs))
    return folder


def test_compare_gates_on_a_lost_non_inferiority(tmp_path: Path) -> None:
    """BASE: m.good is cheaper, not worse. NEW where it lost 2 points (cheaper, worse), its
    saving (not cheaper) or the windows to decide (undecided): exit 1, named. NEW
    unchanged (other windows): exit 0 (the absence)."""
    from tests.conftest import cli as run_cli  # in this process: compare reads records, measures nothing

    suite = TEMPLATE["suite"]

    def side(name: str, seed: int, extra_wrong: int = 0, level: float = 0.7e-3, n: int = 7) -> Path:
        return write_run(tmp_path / name, [
            planted("m", None, set(range(100)), windows(1e-3, n=n, seed=seed), suite=suite),
            planted("m.good", "m", set(range(100 + extra_wrong)), windows(level, n=n, seed=seed + 1), suite=suite)],
            name)

    base, same = side("base", 1), side("same", 3)
    lost = {"cheaper, worse": side("worse", 5, extra_wrong=18), "not cheaper": side("dear", 7, level=1e-3),
            "undecided (too few windows: 1 more each would decide)": side("few", 9, n=2)}
    for now, new in lost.items():
        proc = run_cli("compare", str(base), str(new), "--non-inferiority", "0.01", "--acc-drop", "0.5",
                       "--energy-rise", "100")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"m.good  BASE: cheaper, not worse; NEW: {now}  REGRESSION" in proc.stdout
    proc = run_cli("compare", str(base), str(same), "--non-inferiority", "0.01")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "m.good  cheaper, not worse on both sides" in proc.stdout
    # a wider margin forgives the 2 points
    assert run_cli("compare", str(base), str(lost["cheaper, worse"]), "--non-inferiority", "0.03",
                   "--acc-drop", "0.05").returncode == 0


def test_break_even_is_keyed_by_suite() -> None:
    """The same variant ids in two suites (the SST-2 ladder and its sweep): each row's
    parent is its own suite's."""
    recs = []
    for suite, parent_j, child_train in (("ladder", 2e-3, 10.0), ("sweep", 3e-3, 30.0)):
        recs += [planted("m", None, set(), windows(parent_j, seed=1), suite=suite),
                 planted("m.int8", "m", set(), windows(1e-3, seed=2), train_j=child_train, suite=suite)]
    t = finished.table(recs)
    got = {r["suite"]: r["break_even_inferences"] for _, r in t.iterrows() if r["variant_id"] == "m.int8"}
    assert got["ladder"] == pytest.approx(10 / 1e-3, rel=0.03) and got["sweep"] == pytest.approx(30 / 2e-3, rel=0.03)
