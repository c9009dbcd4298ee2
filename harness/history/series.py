"""Series: the nights of one (suite, profile, variant, machine, meter), per metric.

A series never mixes machines or energy methods: a night measured on another machine, or
by another method (estimate vs RAPL vs NVML), starts or joins another series. Each metric
gets its own step verdict (steps.py) under its own rule: J/inference regresses when it
rises by more than ``energy_rise`` (relative), accuracy when it falls by more than
``acc_drop`` (absolute), and either only beyond the series' own run-to-run spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from harness.history.steps import Rule, Verdict, detect

KEY = ["suite", "profile", "variant_id", "machine", "meter"]


@dataclass(frozen=True)
class Metric:
    column: str
    label: str
    lo: str  # the band's columns: the night's own 95% interval
    hi: str
    relative: bool  # changes are reported as a fraction of the level


METRICS = {
    "J_per_inference": Metric("j_per_inference", "J/inference", "j_per_inference_ci95_lo", "j_per_inference_ci95_hi",
                              relative=True),
    "accuracy": Metric("accuracy", "accuracy", "accuracy_ci95_lo", "accuracy_ci95_hi", relative=False),
}


def rules(energy_rise: float = 0.05, acc_drop: float = 0.01, spread_factor: float = 3.0,
          window: int = 7) -> dict[str, Rule]:
    return {"J_per_inference": Rule(worse=+1, min_effect=energy_rise, relative=True, spread_factor=spread_factor,
                                    window=window),
            "accuracy": Rule(worse=-1, min_effect=acc_drop, relative=False, spread_factor=spread_factor,
                             window=window)}


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

    @property
    def title(self) -> str:
        return f"{self.suite} ({self.profile}) {self.variant_id}"

    @property
    def latest_regression(self) -> list[str]:
        """The metrics whose latest night starts a regression step."""
        return [m for m, v in self.verdicts.items() if v.latest_regression]


def build(points: pd.DataFrame, rule_set: dict[str, Rule] | None = None, suite: str | None = None,
          variant: str | None = None) -> list[Series]:
    """Every series in ``points`` (History.points), each with its verdicts."""
    rule_set = rule_set or rules()
    if suite is not None:
        points = points[points["suite"] == suite]
    if variant is not None:
        points = points[points["variant_id"] == variant]
    out = []
    for key, nights in points.groupby(KEY, sort=True, dropna=False):
        nights = nights.sort_values(["started_at", "run_id"]).reset_index(drop=True)
        s = Series(*key[:4], machine_label=nights["machine_label"].iloc[-1], meter=key[4], nights=nights)
        s.verdicts = {name: detect(nights[METRICS[name].column].tolist(), rule) for name, rule in rule_set.items()}
        out.append(s)
    return out
