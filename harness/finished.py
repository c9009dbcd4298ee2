"""Records -> the finished variant table, in one call.

table.py's columns from the records, decisions.py's verdicts, frontier odds and
break-even intervals from the records' samples, lifecycle.py's columns from the table,
columns.py's derived ones: the report, the history and ``reproduce`` all build it here,
so no two of them can disagree about a row.
"""

from __future__ import annotations

from dataclasses import fields, replace
from typing import Any, Iterable, Mapping

import pandas as pd

from harness import columns, suite_values
from harness.config import DecideConfig
from harness.decisions import add_decisions
from harness.lifecycle import Carbon, add_lifecycle, carbon_from
from harness.records import RunRecord
from harness.rundir import RunDir
from harness.table import build_table


def table(recs: list[RunRecord], carbon: Carbon | None = None,
          decide: Mapping[str, DecideConfig] | DecideConfig | None = None) -> pd.DataFrame:
    """The variant table with every column; ``decide``: one setting, or one per suite name
    (a suite not named takes the defaults)."""
    base = build_table(recs)
    return columns.derived(add_lifecycle(add_decisions(base, recs, decide or DecideConfig()), carbon or carbon_from()))


def overrides(**given: Any) -> dict[str, float]:
    """The command line's ``--accuracy-margin`` and friends that were given (None: not)."""
    names = {f.name for f in fields(DecideConfig)}
    return {k: v for k, v in given.items() if k in names and v is not None}


def decide_settings(runs: Iterable[RunDir], override: Mapping[str, float] | None = None) -> dict[str, DecideConfig]:
    """Each suite's ``decide:`` as its run recorded it (the environment's resolved suite,
    as rundir.read checked it; defaults where absent), then the caller's overrides,
    checked like a suite file's."""
    out: dict[str, DecideConfig] = {}
    for run in runs:
        resolved = run.suite.get("resolved")
        raw = resolved.get("decide") if isinstance(resolved, dict) else None
        cfg = suite_values.dataclass_from(DecideConfig, raw or {}, DecideConfig(),
                                          f"{run.path / 'environment.json'} suite decide")
        if isinstance(run.suite.get("name"), str):
            out.setdefault(run.suite["name"], cfg)
    if override:
        checked = suite_values.dataclass_from(DecideConfig, dict(override), DecideConfig(), "the command line's decide")
        given = {k: getattr(checked, k) for k in override}
        out = {k: replace(v, **given) for k, v in out.items()}
        out[""] = replace(DecideConfig(), **given)  # suites without an environment file
    return out
