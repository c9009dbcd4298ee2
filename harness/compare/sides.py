"""One side of a comparison (its runs, read once) and what must match between the sides
(the comparability key, comparable.py), with the thresholds a comparison takes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from harness import comparable, rundir
from harness.errors import UserError
from harness.records import RunRecord


@dataclass(frozen=True)
class Thresholds:
    acc_drop: float = 0.01  # fraction (1 point)
    energy_rise: float = 0.05  # relative
    alpha: float = 0.05
    windows_as_units: bool = False
    work_rise: float = 0.02  # relative rise of instructions per inference that counts

    #: Each threshold's range, for every entry (the command line's options read it too).
    RANGES = {"acc_drop": (0.0, 1.0), "energy_rise": (0.0, 100.0), "alpha": (0.0, 0.5), "work_rise": (0.0, 100.0)}

    def __post_init__(self) -> None:
        for name, (lo, hi) in self.RANGES.items():
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) \
                    or not lo <= value <= hi or (name == "alpha" and value == 0):
                raise UserError(f"compare threshold {name} is {value!r}; give a number from {lo:g} to {hi:g}"
                                + (" above 0" if name == "alpha" else ""))


Runs = dict[str, dict[int, list[RunRecord]]]  # variant -> run index -> its records
Medians = dict[str, dict[int, float]]  # variant -> run index -> median J/inference


@dataclass
class Side:
    """One side's runs (each once), their records by variant and run, and what the
    refusals compare."""

    runs: list[rundir.RunDir]
    by_variant: Runs
    records: list[RunRecord]
    warnings: list[str]

    def ok(self) -> list[RunRecord]:
        return [r for r in self.records if r.ok]


def load(dirs: list[Path]) -> Side:
    runs = rundir.read_many(dirs)
    by_variant: Runs = {}
    for i, run in enumerate(runs):
        for r in run.records:
            if r.ok:
                by_variant.setdefault(r.variant_id, {}).setdefault(i, []).append(r)
    return Side(runs, by_variant, [r for run in runs for r in run.records], [w for run in runs for w in run.warnings])


def one_per_seed(runs: dict[int, list[RunRecord]]) -> dict[int, RunRecord]:
    """Repeated runs re-measure the same trained models: count each seed's eval once."""
    seen: dict[int, RunRecord] = {}
    for group in runs.values():
        for r in group:
            seen.setdefault(r.seed, r)
    return seen


# -- what must match --------------------------------------------------------------------
def differences(base: Side, new: Side) -> dict[str, str]:
    """What differs between the sides, by the name --allow takes (meter, machine, config),
    in words; the facets and what counts as a difference are comparable.py's."""
    found = comparable.differences(base.runs, new.runs)
    words = {"meter": "BASE and NEW were measured by other methods: {}",
             "machine": "BASE and NEW ran on different machines: {}",
             "config": "BASE and NEW ran other resolved configs ({}: another profile, or the suite changed)"}
    return {k: words[k].format(found[k]) for k in words if k in found}


def evidence(vid: str, base: Side, new: Side) -> str | None:
    """None when ``vid`` ran the same model through the same code path on both sides
    (same artifact keys, run config and package versions), else what changed."""
    def sig(side: Side) -> set[tuple]:
        return {(r.seed, r.artifact_key, r.runtime.get("artifact_key"), r.run_config_hash)
                for g in side.by_variant.get(vid, {}).values() for r in g}

    if sig(base) != sig(new):
        return "artifact key or run config"
    return None


def packages_changed(base: Side, new: Side) -> list[str]:
    """Package versions, and the measuring code (comparable.code: its digest, or the commit
    of a run made before the digest existed), that differ between the sides."""
    found = comparable.differences(base.runs, new.runs)
    out = [part.split(" ")[0] for part in found.get("packages", "").split("; ") if part]
    if "code" in found:
        out.append(f"the measuring code (measure.py, meters, runtimes, runner: {found['code']})")
    return out
