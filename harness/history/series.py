"""Series: the nights of one (suite, profile, variant, machine, meter), per metric.

A series never mixes machines or energy methods: a night measured on another machine, or
by another method (estimate vs RAPL vs NVML), starts or joins another series. Each metric
gets its own step verdict (steps.py) under its own rule: J/inference regresses when it
rises by more than ``energy_rise`` (relative), accuracy when it falls by more than
``acc_drop`` (absolute), and either only beyond the series' own run-to-run spread.

**J/inference against the night's other variants** (``j_per_inference_rel``): a
machine's drift between nights is mostly common to the variants of one run (on the CI
VM one night read 1.05-2.07x for every variant at once). Each variant's J/inference is
put on its own scale (log, minus its median over the nights), the night's drift for
variant v is the median of the *other* variants' values that night (at least
``MIN_OTHERS`` of them, v left out so that v's own change does not hide itself), and
the series divides it out: ``J_v / exp(drift)``, still in joules at the series'
typical machine state. On ten real nights here its spread was about half the raw one
(CV 4-22% against 9-40%). It sees a change in one variant through the drift; it is
blind to a change that hits every variant alike, which the raw series is for. Both
gate.

**Instructions per inference** (``measure.work: instructions``, work.py): a count, not
energy, and deterministic, so its night-to-night spread is the count's own (~0.1%) and
the minimum effect (``work_rise``, 2%) is what a step must exceed. It gates like the
others; a series whose nights counted none has no verdict for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pandas as pd

import dataclasses

import numpy as np

from harness.history.steps import MIN_PIECE, Rule, Verdict, detect

KEY = ["suite", "profile", "variant_id", "machine", "meter"]
MIN_OTHERS = 3  # other variants a night needs before its drift is estimated


@dataclass(frozen=True)
class Metric:
    column: str
    label: str
    lo: str | None  # the band's columns: the night's own 95% interval
    hi: str | None
    relative: bool  # changes are reported as a fraction of the level
    optional: bool = False  # a series with no value of it gets no verdict for it (not "too few nights")


METRICS = {
    "J_per_inference": Metric("J_per_inference", "J/inference", "J_per_inference_within_run_ci95_lo", "J_per_inference_within_run_ci95_hi",
                              relative=True),
    "J_per_inference_rel": Metric("j_per_inference_rel", "J/inf vs rest", None, None, relative=True),
    "accuracy": Metric("accuracy", "accuracy", "accuracy_ci95_lo", "accuracy_ci95_hi", relative=False),
    # deterministic (work.py): its spread is the count's own, ~0.1%, so the minimum effect decides
    "instructions_per_inference": Metric("instructions_per_inference", "instr/inf", None, None, relative=True,
                                         optional=True),
}


def rules(energy_rise: float = 0.05, acc_drop: float = 0.01, spread_factor: float = 3.0,
          window: int = 7, work_rise: float = 0.02) -> dict[str, Rule]:
    energy = Rule(worse=+1, min_effect=energy_rise, relative=True, spread_factor=spread_factor, window=window)
    return {"J_per_inference": energy, "J_per_inference_rel": energy,
            "accuracy": Rule(worse=-1, min_effect=acc_drop, relative=False, spread_factor=spread_factor,
                             window=window),
            "instructions_per_inference": Rule(worse=+1, min_effect=work_rise, relative=True,
                                               spread_factor=spread_factor, window=window)}


#: The metrics the measuring code makes (energy and work); accuracy is the model's.
MEASURED = ("J_per_inference", "J_per_inference_rel", "instructions_per_inference")


def same_code(nights: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The nights with the measured metrics blanked (NaN) where the night's measuring code differs
    from the latest night's (comparable.code; unknown matches anything): the same key
    that makes compare withhold and report refuse to pool. Returns (nights, how many)."""
    if "measure_code" not in nights.columns or pd.isna(nights["measure_code"].iloc[-1]):
        return nights, 0
    other = nights["measure_code"].notna() & (nights["measure_code"] != nights["measure_code"].iloc[-1])
    if not other.any():
        return nights, 0
    columns = [METRICS[m].column for m in MEASURED if METRICS[m].column in nights.columns]
    nights = nights.copy()
    nights.loc[other, columns] = np.nan
    return nights, int(other.sum())


def same_method(values: pd.Series, methods: pd.Series) -> pd.Series:
    """``values`` of the nights counted as the latest count was (the same tool, tool
    settings and batch sample, as the ``work_method`` string says); NaN for the others,
    which have no verdict: counts made differently are never compared (compare refuses
    the same pair)."""
    counted = methods[values.notna()]
    if counted.empty:
        return values
    return values.where(methods == counted.iloc[-1])


def from_columns(points: pd.DataFrame, name: str, text: bool = False) -> pd.Series:
    """A declared column the results table keeps only in its ``columns`` JSON (every
    column of the report's table is there by name): as floats, NaN where absent; with
    ``text``, as strings, None where absent."""
    if name in points.columns:
        return points[name] if text else points[name].astype(float)
    if "columns" not in points.columns:
        return pd.Series(None if text else np.nan, index=points.index, dtype=object if text else float)

    def one(cell: object) -> object:
        try:
            value = json.loads(cell).get(name) if isinstance(cell, str) else None
        except (ValueError, AttributeError):
            value = None
        if text:
            return value if isinstance(value, str) else None
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else np.nan

    values = points["columns"].map(one)
    return values if text else values.astype(float)


@dataclass
class Series:
    suite: str
    profile: str
    variant_id: str
    machine: str
    machine_label: str
    meter: str
    nights: pd.DataFrame  # the points rows, oldest first
    verdicts: dict[str, Verdict] = field(default_factory=dict)
    #: nights measured by other code than the latest night (comparable.code): kept in the
    #: series, never compared with it
    other_code: int = 0

    @property
    def title(self) -> str:
        return f"{self.suite} ({self.profile}) {self.variant_id}"

    @property
    def latest_regression(self) -> list[str]:
        """The metrics whose latest night starts or confirms a regression step (the gate)."""
        return [m for m, v in self.verdicts.items() if v.gate]


def drift_corrected(points: pd.DataFrame) -> pd.Series:
    """``j_per_inference_rel`` for every row of ``points`` (NaN where a night has fewer
    than MIN_OTHERS other variants of the same suite, profile, machine and meter)."""
    out = pd.Series(np.nan, index=points.index)
    for _, group in points.groupby(["suite", "profile", "machine", "meter"], sort=False):
        logs = np.log(group.pivot_table(index="run_id", columns="variant_id", values="J_per_inference"))
        scaled = logs - logs.median()  # each variant on its own scale
        for v in logs.columns:
            others = scaled.drop(columns=v)
            drift = others.median(axis=1).where(others.notna().sum(axis=1) >= MIN_OTHERS)
            rel = np.exp(logs[v] - drift)
            rows = group[group["variant_id"] == v]
            out.loc[rows.index] = rows["run_id"].map(rel).to_numpy()
    return out


def _detect(values: pd.Series, rule: Rule) -> Verdict:
    """``detect`` over the nights that have a value, indices mapped back to all nights."""
    finite = np.flatnonzero(np.isfinite(values.to_numpy(dtype=float)))
    verdict = detect(values.iloc[finite].tolist(), rule)
    if len(finite) == len(values):
        return verdict

    def back(step):
        return dataclasses.replace(step, index=int(finite[step.index])) if step is not None else None

    latest = len(finite) > 0 and finite[-1] == len(values) - 1  # the latest night has a value
    confirm_at = int(finite[len(finite) - MIN_PIECE]) if latest and len(finite) >= MIN_PIECE else -1
    return dataclasses.replace(verdict, steps=[back(st) for st in verdict.steps], confirm_at=confirm_at,
                               new=back(verdict.new) if verdict.new is not None and latest else None)


def build(points: pd.DataFrame, rule_set: dict[str, Rule] | None = None, suite: str | None = None,
          variant: str | None = None) -> list[Series]:
    """Every series in ``points`` (History.points), each with its verdicts."""
    rule_set = rule_set or rules()
    points = points.assign(j_per_inference_rel=drift_corrected(points),  # over every variant, before filtering
                           instructions_per_inference=from_columns(points, "instructions_per_inference"),
                           work_method=from_columns(points, "work_method", text=True))
    if suite is not None:
        points = points[points["suite"] == suite]
    if variant is not None:
        points = points[points["variant_id"] == variant]
    out = []
    for key, nights in points.groupby(KEY, sort=True, dropna=False):
        nights = nights.sort_values(["started_at", "run_id"]).reset_index(drop=True)
        nights["instructions_per_inference"] = same_method(nights["instructions_per_inference"], nights["work_method"])
        nights, other_code = same_code(nights)
        s = Series(*key[:4], machine_label=nights["machine_label"].iloc[-1], meter=key[4], nights=nights,
                   other_code=other_code)
        s.verdicts = {name: _detect(nights[METRICS[name].column], rule) for name, rule in rule_set.items()
                      if not (METRICS[name].optional and nights[METRICS[name].column].isna().all())}
        out.append(s)
    return out
