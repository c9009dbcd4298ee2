"""Decisions with their confidence, per variant (docs/statistics.md gives the definitions):

- **verdict** against its parent: ``cheaper, not worse`` / ``cheaper, worse`` /
  ``not cheaper`` / ``undecided (...: N more would decide)``. Energy: a one-sided
  Mann-Whitney test that the variant's J/inference units (windows within one run, run
  medians across runs: samples.energy) lie below the parent's. Accuracy: non-inferiority
  within ``accuracy_margin`` by a one-sided paired bootstrap of the per-example
  differences (examples within a seed; seeds resampled as the unit above them where
  there are several, as the table's intervals are made).
- **p_frontier**: the share of bootstrap replicates in which the row is on its suite
  and task's accuracy-energy frontier, resampling examples (the same examples for every
  row: they answered the same questions), seeds, and energy units per row.
- **break-even with its interval**: creation energy / energy saved per inference, the
  saving's interval from the same energy-unit bootstrap; "no saving" when the saving's
  interval reaches 0. An upper-bound creation makes the break-even an upper bound; an
  unknown one leaves it unknown.

Pure over the records' samples and the table's rows; the table is returned with the
columns added.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd
from scipy import stats as sps

from harness import samples, stats
from harness.config import DecideConfig
from harness.records import RunRecord
from harness.table import creation_columns

#: Replicates of the frontier and break-even bootstrap; fixed seed: a table reproduces to the digit.
RESAMPLES = 2000
SEED = 0
NOT_CHEAPER, CHEAPER_NOT_WORSE, CHEAPER_WORSE = "not cheaper", "cheaper, not worse", "cheaper, worse"
#: break_even_status values
NO_PARENT, NO_SAVING, PAYS_BACK, PAYS_BACK_BOUND, UNKNOWN_CREATION = (
    "no parent", "no saving", "pays back", "pays back (upper bound)", "unknown creation")


def rank_p(variant: np.ndarray, parent: np.ndarray) -> float:
    """One-sided Mann-Whitney p that the variant's units lie below the parent's (exact
    for small samples without ties, as scipy chooses)."""
    return float(sps.mannwhitneyu(variant, parent, alternative="less").pvalue)


def smallest_rank_p(n: int, m: int) -> float:
    """The smallest one-sided p an exact rank test of n against m units can give: 1 / C(n+m, n)."""
    return 1.0 / math.comb(n + m, n)


def units_to_decide(n: int, m: int, alpha: float) -> int:
    """How many more units on each side before a rank test could reach ``alpha`` at all."""
    k = 0
    while smallest_rank_p(n + k, m + k) > alpha:
        k += 1
    return k


def non_inferiority(parent: np.ndarray, variant: np.ndarray, margin: float) -> tuple[float, float, float]:
    """(p that the loss is below ``margin``, p that it is beyond it, the bootstrap's
    standard error of the difference), from the paired seeds x examples bootstrap of the
    per-example differences; p = (k + 1) / (B + 1), never 0."""
    diff = variant.astype(np.int8) - parent.astype(np.int8)
    dist = stats.seed_example_bootstrap(diff)
    b = len(dist)
    # a replicate exactly at the margin supports neither side's claim
    p_not_worse = (int((dist <= -margin + 1e-12).sum()) + 1) / (b + 1)
    p_worse = (int((dist >= -margin - 1e-12).sum()) + 1) / (b + 1)
    return p_not_worse, p_worse, float(dist.std())


def examples_to_decide(n: int, delta: float, se: float, margin: float, alpha: float) -> int | None:
    """Examples beyond ``n`` at which the observed difference would be ``alpha``-significant
    against the margin (the standard error shrinking as 1/sqrt(n)); None when the
    difference sits at the margin."""
    gap = abs(delta + margin)
    if gap < 1e-12:
        return None
    z = float(sps.norm.ppf(1 - alpha))
    return max(1, math.ceil(n * (z * max(se, 1e-12) / gap) ** 2) - n)


def verdict(parent: np.ndarray, variant: np.ndarray, e_parent: samples.Energy, e_variant: samples.Energy,
            cfg: DecideConfig) -> tuple[str, float, float]:
    """(verdict, one-sided energy p, non-inferiority p) of a variant against its parent."""
    n, m = len(e_variant.values), len(e_parent.values)
    p_energy = rank_p(e_variant.values, e_parent.values)
    p_ni, p_worse, se = non_inferiority(parent, variant, cfg.accuracy_margin)
    if p_energy > cfg.energy_alpha:
        if smallest_rank_p(n, m) > cfg.energy_alpha:
            k = units_to_decide(n, m, cfg.energy_alpha)
            what = e_variant.unit if e_variant.unit == e_parent.unit else "windows or runs"
            return (f"undecided (too few {what}: {k} more each would decide)", p_energy, p_ni)
        return NOT_CHEAPER, p_energy, p_ni
    if p_ni <= cfg.accuracy_alpha:
        return CHEAPER_NOT_WORSE, p_energy, p_ni
    if p_worse <= cfg.accuracy_alpha:
        return CHEAPER_WORSE, p_energy, p_ni
    delta = float(variant.mean() - parent.mean())
    more = examples_to_decide(variant.shape[1], delta, se, cfg.accuracy_margin, cfg.accuracy_alpha)
    if more is None:
        return "undecided (the accuracy difference sits at the margin: no number of examples would decide)", \
            p_energy, p_ni
    return f"undecided (too few examples: about {more:,} more would decide)", p_energy, p_ni


def _accuracy_draws(correct: np.ndarray, w_seed: np.ndarray, w_example: np.ndarray) -> np.ndarray:
    """Bootstrap accuracies of one row from the group's seed and example weights."""
    s, n = correct.shape
    return np.einsum("bs,sn,bn->b", w_seed, correct.astype(np.float64), w_example) / (s * n)


def _weights(size: int, rng: np.random.Generator) -> np.ndarray:
    return rng.multinomial(size, np.full(size, 1 / size), size=RESAMPLES)


def _energy_draws(e: samples.Energy, b: int, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, len(e.values), size=(b, len(e.values)))
    return np.median(e.values[idx], axis=1)


def frontier_odds(acc: np.ndarray, energy: np.ndarray) -> np.ndarray:
    """(rows,) share of replicates each row is undominated in; ``acc``, ``energy``: (B, rows)."""
    a_ge = acc[:, None, :] >= acc[:, :, None]  # [b, i, j]: j at least as accurate as i
    e_le = energy[:, None, :] <= energy[:, :, None]
    strict = (acc[:, None, :] > acc[:, :, None]) | (energy[:, None, :] < energy[:, :, None])
    dominated = (a_ge & e_le & strict).any(axis=2)
    return 1.0 - dominated.mean(axis=0)


def _creation_draws(per_seed: list[float], b: int, rng: np.random.Generator) -> np.ndarray:
    values = np.asarray(per_seed, dtype=float)
    if len(values) < 2:
        return np.full(b, float(values.mean()) if len(values) else math.nan)
    idx = rng.integers(0, len(values), size=(b, len(values)))
    return values[idx].mean(axis=1)


def break_even_row(r: pd.Series, parent_j: float, saving: np.ndarray, creation: np.ndarray) -> dict:
    """The break-even status, point and 95% interval from the saving's and the creation's draws."""
    nan = math.nan
    point = {"break_even_inferences": nan, "break_even_ci95_lo": nan, "break_even_ci95_hi": nan}
    lo_saving = float(np.quantile(saving, 0.025))
    saved = float(parent_j - r["J_per_inference"])
    if lo_saving <= 0 or saved <= 0:
        return {**point, "break_even_status": NO_SAVING}
    if pd.isna(r["train_J"]):
        return {**point, "break_even_status": UNKNOWN_CREATION}
    ratio = creation / saving
    status = PAYS_BACK_BOUND if bool(r.get("train_J_is_bound")) else PAYS_BACK
    return {"break_even_inferences": float(math.ceil(r["train_J"] / saved)),
            "break_even_ci95_lo": float(math.ceil(np.quantile(ratio, 0.025))),
            "break_even_ci95_hi": float(math.ceil(np.quantile(ratio, 0.975))), "break_even_status": status}


def one_setting(settings: Mapping[str, DecideConfig] | DecideConfig, suite: str) -> DecideConfig:
    """A suite's decide settings: the one given, its own, the command line's (key ""), or the defaults."""
    if isinstance(settings, DecideConfig):
        return settings
    got = settings.get(suite) or settings.get("")
    return got if isinstance(got, DecideConfig) else DecideConfig()


def add_decisions(table: pd.DataFrame, recs: list[RunRecord],
                  cfg: Mapping[str, DecideConfig] | DecideConfig = DecideConfig()) -> pd.DataFrame:
    """``table`` with verdict, its two p values, p_frontier and the break-even columns."""
    out = table.copy()
    grouped = samples.groups(recs)
    by_key = samples.by_seed(recs)
    keys = [(str(r["suite"]), str(r["task"]), str(r["variant_id"])) for _, r in out.iterrows()]
    energies = {k: samples.energy(grouped[k]) for k in keys}
    answers = {k: samples.correctness(samples.one_per_model(grouped[k])) for k in keys}
    rng = np.random.default_rng(SEED)
    draws = {k: _energy_draws(energies[k], RESAMPLES, rng) for k in keys}
    # the frontier's odds, per suite and task: every row resampled together
    odds: dict = {}
    for (suite, task) in dict.fromkeys((k[0], k[1]) for k in keys):
        members = [k for k in keys if k[:2] == (suite, task)]
        # the same examples (and the same training seeds) for every row: they answered the
        # same questions, so two rows with the same answers tie in every replicate
        w_examples = {n: _weights(n, rng) for n in sorted({answers[k].shape[1] for k in members})}
        w_seeds = {s: _weights(s, rng) for s in sorted({answers[k].shape[0] for k in members})}
        acc = np.column_stack([_accuracy_draws(answers[k], w_seeds[answers[k].shape[0]],
                                               w_examples[answers[k].shape[1]]) for k in members])
        odds.update(zip(members, frontier_odds(acc, np.column_stack([draws[k] for k in members]))))
    rows = []
    for k, (_, r) in zip(keys, out.iterrows()):
        row = {"verdict": None, "verdict_energy_p": math.nan, "verdict_accuracy_p": math.nan, "p_frontier": odds[k],
               "break_even_status": NO_PARENT, "break_even_inferences": math.nan,
               "break_even_ci95_lo": math.nan, "break_even_ci95_hi": math.nan}
        parent = (k[0], k[1], str(r["parent"])) if pd.notna(r.get("parent")) and r.get("parent") else None
        pair = samples.paired(grouped[k], by_key) if parent in energies else None
        if parent in energies and pair is not None:
            row["verdict"], row["verdict_energy_p"], row["verdict_accuracy_p"] = verdict(
                *pair, energies[parent], energies[k], one_setting(cfg, k[0]))
        if parent in energies:
            creation = _creation_draws(_creation_per_seed(grouped[k]), RESAMPLES, rng)
            row.update(break_even_row(r, energies[parent].point, draws[parent] - draws[k], creation))
        rows.append(row)
    for name in rows[0] if rows else ():
        out[name] = [x[name] for x in rows]
    return out


def _creation_per_seed(group: list[RunRecord]) -> list[float]:
    """Each trained model's creation J as the table counts it (table.creation_columns)."""
    return [creation_columns([r])["train_J"] for r in samples.one_per_model(group)]
