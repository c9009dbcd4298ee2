"""A published run against its rerun: per variant and figure, the published value, this
machine's, and a verdict (docs/statistics.md, "Reproducing a run"):

- ``identical``: accuracy from the same predictions (counted), or an equal count
  (FLOPs, parameters, size);
- ``within the stated uncertainty``: a number inside what the published run stated
  (the accuracy's 95% interval; J/inference within the meter's stated systematic error;
  a ratio to the parent whose within-run intervals overlap; instructions within 0.3%);
- ``differs as expected (another machine: ...)``: energy or answers measured on
  another machine or with another meter;
- ``differs unexpectedly``: everything else, FLOPs, parameters and sizes included
  (they must be identical).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from harness import comparable, finished, samples, stats
from harness.render import fmt
from harness.records import RunRecord
from harness.rundir import RunDir

IDENTICAL, WITHIN, UNEXPECTED = "identical", "within the stated uncertainty", "differs unexpectedly"
#: The spread the work tool states for instructions per inference (A/A CV <= 0.3%: docs/performance.md).
WORK_SPREAD = 0.003


@dataclass(frozen=True)
class Check:
    variant: str
    figure: str
    published: Any
    here: Any
    verdict: str
    seed: int | None = None


def expected(label: str) -> str:
    return f"differs as expected (another machine: {label})"


def _counts(pub: RunRecord, new: RunRecord, vid: str) -> list[Check]:
    out = []
    for figure, a, b in (("flops_per_inference", pub.flops.get("per_inference"), new.flops.get("per_inference")),
                         ("params", pub.n_params, new.n_params), ("nonzero_params", pub.n_nonzero_params,
                                                                 new.n_nonzero_params),
                         ("size_bytes", pub.size_bytes, new.size_bytes)):
        if a is None and b is None:
            continue
        out.append(Check(vid, figure, a, b, IDENTICAL if a == b else UNEXPECTED, pub.seed))
    return out


def _accuracy(pub: RunRecord, new: RunRecord, vid: str, other: str | None) -> Check:
    differ = sum(a != b for a, b in zip(pub.eval.predictions, new.eval.predictions))
    here = f"{new.eval.accuracy:.4f} ({differ} of {new.eval.n} predictions differ)"
    if pub.eval.labels != new.eval.labels:
        return Check(vid, "accuracy", pub.eval.accuracy, here + "; other eval labels", UNEXPECTED, pub.seed)
    if differ == 0:
        return Check(vid, "accuracy", pub.eval.accuracy, f"{new.eval.accuracy:.4f} (same predictions)", IDENTICAL,
                     pub.seed)
    lo, hi = stats.wilson(pub.eval.correct, pub.eval.n)
    inside = lo <= new.eval.accuracy <= hi
    verdict = (expected(other) if other else WITHIN) if inside else UNEXPECTED
    return Check(vid, "accuracy", pub.eval.accuracy, here, verdict, pub.seed)


def _work(pub: RunRecord, new: RunRecord, vid: str) -> list[Check]:
    a, b = pub.inference.work, new.inference.work
    if a is None or b is None or a.per_inference is None or b.per_inference is None:
        return []
    if (a.tool, a.batches) != (b.tool, b.batches):
        return [Check(vid, "instructions_per_inference", a.per_inference, b.per_inference,
                      "not compared (another tool or sample)", pub.seed)]
    close = abs(b.per_inference / a.per_inference - 1) <= WORK_SPREAD
    return [Check(vid, "instructions_per_inference", a.per_inference, b.per_inference,
                  (IDENTICAL if a.per_inference == b.per_inference else WITHIN) if close else UNEXPECTED, pub.seed)]


def _ratio(t: pd.DataFrame, vid: str, parent: str) -> tuple[float, float, float]:
    """J/inference over the parent's, with the interval the two within-run intervals allow."""
    r, p = t.loc[vid], t.loc[parent]
    lo = r["J_per_inference_within_run_ci95_lo"] / p["J_per_inference_within_run_ci95_hi"]
    hi = r["J_per_inference_within_run_ci95_hi"] / p["J_per_inference_within_run_ci95_lo"]
    return float(r["J_per_inference"] / p["J_per_inference"]), float(lo), float(hi)


def _energy(pub_t: pd.DataFrame, new_t: pd.DataFrame, vid: str, other: str | None) -> list[Check]:
    r, n = pub_t.loc[vid], new_t.loc[vid]
    unc = float(r["energy_uncertainty"])
    close = abs(n["J_per_inference"] / r["J_per_inference"] - 1) <= unc
    out = [Check(vid, "J_per_inference", float(r["J_per_inference"]), float(n["J_per_inference"]),
                 expected(other) if other else WITHIN if close else UNEXPECTED)]
    parent = r["parent"]
    if isinstance(parent, str) and parent in pub_t.index and parent in new_t.index:
        a, b = _ratio(pub_t, vid, parent), _ratio(new_t, vid, parent)
        overlap = not (a[2] < b[1] or b[2] < a[1]) if all(x == x for x in (*a, *b)) else False
        out.append(Check(vid, f"J_per_inference / {parent}'s", a[0], b[0],
                         expected(other) if other else WITHIN if overlap else UNEXPECTED))
    return out


def compare(published: RunDir, reproduced: RunDir) -> tuple[list[Check], dict[str, Any]]:
    """Every check, and what was compared with what (machines, meters, seeds)."""
    keys = [comparable.machine_key(run.fingerprint) for run in (published, reproduced)]
    meters = [comparable.facets(run)["meter"] for run in (published, reproduced)]
    other = None
    if keys[0][0] != keys[1][0]:
        other = keys[1][1]
    elif meters[0] != meters[1]:
        other = f"meter {meters[1]} where {meters[0]} measured"
    pub_by, new_by = samples.by_seed(published.records), samples.by_seed(reproduced.records)
    checks: list[Check] = []
    for (suite, vid, seed), rec in sorted(pub_by.items(), key=lambda kv: (kv[0][1], kv[0][2])):
        new = new_by.get((suite, vid, seed))
        if new is None:
            continue
        checks += _counts(rec, new, vid)
        checks.append(_accuracy(rec, new, vid, other))
        checks += _work(rec, new, vid)
    pub_t, new_t = (finished.table(run.records).set_index("variant_id") for run in (published, reproduced))
    for vid in [v for v in pub_t.index if v in new_t.index]:
        checks += _energy(pub_t, new_t, vid, other)
    meta = {"published": str(published.path), "reproduced": str(reproduced.path),
            "published_machine": keys[0][1], "machine_here": keys[1][1], "same_machine": keys[0][0] == keys[1][0],
            "meters": meters, "seeds": sorted({s for (_, _, s) in new_by})}
    return checks, meta


def markdown(checks: list[Check], meta: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for c in checks:
        counts[c.verdict] = counts.get(c.verdict, 0) + 1
    lines = [f"# Reproduction of {meta['published']}", "",
             f"- Rerun in `{meta['reproduced']}` on {meta['machine_here']} (published: {meta['published_machine']}; "
             f"{'the same machine' if meta['same_machine'] else 'another machine'}), seeds {meta['seeds']}, "
             f"meter {meta['meters'][1]} (published: {meta['meters'][0]}).",
             "- " + "; ".join(f"{k}: {v}" for k, v in sorted(counts.items())) + ".", "",
             "| variant | seed | figure | published | here | verdict |", "|---|---|---|---|---|---|"]
    for c in checks:
        lines.append(f"| {c.variant} | {'' if c.seed is None else c.seed} | {c.figure} | {_cell(c.published)} | "
                     f"{_cell(c.here)} | {c.verdict} |")
    return "\n".join(lines) + "\n"


def _cell(value: Any) -> str:
    return fmt(float(value)) if isinstance(value, (int, float)) and not isinstance(value, bool) else str(value)


def as_json(checks: list[Check], meta: dict[str, Any]) -> str:
    return json.dumps({**meta, "checks": [asdict(c) for c in checks]}, indent=1, default=str)
