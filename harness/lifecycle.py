"""Which variant buys the most accuracy per joule, and when does its training pay back?

Pure functions over the table (one row per variant), so they can be checked against a
hand-built example whose answers are known:

- Pareto flag: no other row of the same task is at least as accurate *and* at most as
  costly per inference, and strictly better in one of the two.
- (Break-even against the parent needs the records' samples for its interval:
  decisions.py.)
- Lifecycle energy at N queries: every joule spent creating the model along its lineage
  (a distilled student pays for its teacher's training too) + N x J per inference.
  Where one creation along the lineage is unknown (a variant made outside joulebench),
  the lineage and lifecycle figures are unknown (NaN), never a sum that counts it as 0.
- Carbon: kWh x grid intensity (gCO2e/kWh) x PUE.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from harness.columns import is_bound

QUERY_SCALES = (1e3, 1e6, 1e9)
LB_TO_G = 453.59237


@dataclass(frozen=True)
class Carbon:
    g_per_kwh: float
    pue: float
    source: str

    def grams(self, joules: float) -> float:
        return joules / 3.6e6 * self.g_per_kwh * self.pue

    def describe(self) -> str:
        return f"gCO2e = kWh x {self.g_per_kwh:.1f} g/kWh x PUE {self.pue:g} ({self.source})"


PRESETS = {
    "default": Carbon(475.0, 1.58, "IEA world-average grid intensity 2019, 475 g/kWh; "
                                   "PUE 1.58, the Uptime Institute 2018 data-centre average"),
    "strubell2019": Carbon(0.954 * LB_TO_G, 1.58, "Strubell et al. 2019: US EPA average 0.954 lb CO2/kWh, PUE 1.58"),
}


def carbon_from(preset: str = "default", g_per_kwh: float | None = None, pue: float | None = None) -> Carbon:
    base = PRESETS[preset]
    if g_per_kwh is None and pue is None:
        return base
    return Carbon(g_per_kwh if g_per_kwh is not None else base.g_per_kwh, pue if pue is not None else base.pue,
                  f"user-set values over the {preset} preset")


def lineage_key(row: pd.Series, variant: str | None = None) -> tuple[str, str, str]:
    """The one key of a row's lineage: its suite, task and variant (``variant``: another
    variant of the same suite and task, its parent). Two suites may use the same variant
    ids for other models (a sweep's bert_tiny is not the ladder's)."""
    return (str(row.get("suite")), str(row["task"]), str(row["variant_id"] if variant is None else variant))


def pareto_flags(table: pd.DataFrame) -> pd.Series:
    """Whether each row is on its suite and task's accuracy-energy frontier."""
    flags = pd.Series(False, index=table.index)
    groups = ["suite", "task"] if "suite" in table.columns else ["task"]
    for _, group in table.groupby(groups):
        for i, row in group.iterrows():
            dominated = (
                (group["accuracy"] >= row["accuracy"]) & (group["J_per_inference"] <= row["J_per_inference"])
                & ((group["accuracy"] > row["accuracy"]) | (group["J_per_inference"] < row["J_per_inference"]))
            ).any()
            flags[i] = not dominated
    return flags


def _by_id(table: pd.DataFrame) -> dict[tuple[str, str, str], pd.Series]:
    return {lineage_key(r): r for _, r in table.iterrows()}


def own_creation_j(row: pd.Series) -> float:
    """What making this row cost on its own: its train J; for a swept baseline, the whole
    search (tuning J), which already holds the selected trial's training."""
    tuning = row.get("tuning_J", float("nan"))
    return row["train_J"] if tuning is None or pd.isna(tuning) else tuning


def lineage_rows(table: pd.DataFrame) -> list[list[pd.Series]]:
    """For each row, the rows whose creation it pays for, itself first, each once: a
    variant pays for its ancestors' creation and for the search that chose its root."""
    rows = _by_id(table)

    def chain(key: tuple[str, str, str], seen: frozenset = frozenset()) -> list[pd.Series]:
        r = rows.get(key)
        if r is None or key in seen:
            return []
        if str(r.get("train_J_source") or "measured") != "measured":
            # made outside joulebench: its parent is the row it is compared with, not where it
            # came from; its lineage is its own creation (unknown, or as reported)
            return [r]
        return [r, *chain(lineage_key(r, r["parent"]), seen | {key})]

    return [chain(lineage_key(r)) for _, r in table.iterrows()]


def lineage_columns(table: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Per row, from one walk of its lineage: every joule spent creating it (each counted
    once), and whether a creation figure along it is only an upper bound (so the sum is)."""
    chains = lineage_rows(table)
    return (pd.Series([sum(own_creation_j(x) for x in chain) for chain in chains], index=table.index, dtype=float),
            pd.Series([any(is_bound(x, "train_J") for x in chain) for chain in chains], index=table.index,
                      dtype=bool))


def lineage_train_j(table: pd.DataFrame) -> pd.Series:
    """Every joule spent creating the row along its lineage, each counted once."""
    return lineage_columns(table)[0]


def add_lifecycle(table: pd.DataFrame, carbon: Carbon) -> pd.DataFrame:
    out = table.copy()
    out["pareto"] = pareto_flags(out)
    out["lineage_train_J"], out["lineage_train_J_is_bound"] = lineage_columns(out)
    out["lifecycle_is_bound"] = [bool(lineage) or is_bound(r, "J_per_inference")
                                 for lineage, (_, r) in zip(out["lineage_train_J_is_bound"], out.iterrows())]
    for n in QUERY_SCALES:
        out[f"J_at_{n:.0e}_queries".replace("+0", "")] = out["lineage_train_J"] + n * out["J_per_inference"]
    out["train_gCO2e"] = out["lineage_train_J"].map(carbon.grams)
    out["gCO2e_per_1e6_queries"] = (1e6 * out["J_per_inference"]).map(carbon.grams)
    return out
