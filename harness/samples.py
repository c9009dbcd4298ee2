"""Records -> each variant's samples, in the units its statistics are valid for.

The one place that says which records make a table row and what was sampled:
- a row is one (suite, task, variant) (``groups``);
- its answers are a (seeds x examples) 0/1 matrix, each trained model once
  (``one_per_model``, ``correctness``), tested against its parent on the seeds both have
  (``paired``);
- its energy units are the J/inference of every window in one run (windows within the
  run), or each run's median where several runs are pooled (runs the unit) (``energy``).

table.py turns them into columns; decisions.py into verdicts, frontier odds and
break-even intervals, so both read one definition.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from harness import stats
from harness.records import RunRecord

Key = tuple[str, str, str]  # (suite, task, variant_id): lifecycle.lineage_key's order


def groups(recs: list[RunRecord]) -> dict[Key, list[RunRecord]]:
    """The successful records of each row, seeds in order."""
    out: dict[Key, list[RunRecord]] = {}
    for r in recs:
        if r.ok:
            out.setdefault((r.suite, r.task, r.variant_id), []).append(r)
    for g in out.values():
        g.sort(key=lambda r: r.seed)
    return out


def by_seed(recs: list[RunRecord]) -> dict[tuple, RunRecord]:
    """(suite, variant, seed) -> its first successful record (repeated runs hold the same model)."""
    out: dict[tuple, RunRecord] = {}
    for r in recs:
        if r.ok:
            out.setdefault((r.suite, r.variant_id, r.seed), r)
    return out


def one_per_model(group: list[RunRecord]) -> list[RunRecord]:
    """One record per (seed, trained artifact): repeated runs re-measure the same models,
    and their answers are one seed's, not more seeds (the first run's record is kept). A
    model the seed does not change (a file made outside joulebench, a cast or int8 of
    it) is one model under every seed: one record (``model_identity``; older records:
    the file's digest)."""
    seen: dict[tuple, RunRecord] = {}
    for r in group:
        if r.model_identity:  # which model it is (a seedless one: the same under every seed), and how it runs
            seen.setdefault(("model", r.model_identity, r.runtime.get("name"),
                             json.dumps(r.runtime.get("options"), sort_keys=True, default=str)), r)
        elif r.train is not None and r.train.origin_sha256:  # a given file: one model whatever the seed
            seen.setdefault(("file", r.train.origin_sha256, r.runtime.get("name")), r)
        else:
            seen.setdefault((r.seed, r.artifact_key, r.runtime.get("artifact_key")), r)
    return list(seen.values())


def correctness(group: list[RunRecord]) -> np.ndarray:
    """(seeds x examples) 0/1 matrix of a variant's answers, seeds in the given order."""
    return np.array([r.eval.correct_mask() for r in group], dtype=bool)


def paired(group: list[RunRecord], by_key: dict[tuple, RunRecord]) -> tuple[np.ndarray, np.ndarray] | None:
    """(parent, variant) answer matrices on the seeds both have and the same eval
    examples; None where there is no such pair (no parent, other examples)."""
    pairs = [(by_key.get((r.suite, r.parent, r.seed)), r) for r in one_per_model(group) if r.parent]
    pairs = [(p, r) for p, r in pairs if p is not None and p.eval.labels == r.eval.labels]
    if not pairs:
        return None
    return correctness([p for p, _ in pairs]), correctness([r for _, r in pairs])


@dataclass(frozen=True)
class Energy:
    """A row's J/inference sample: ``values`` are windows of one run, or run medians."""

    values: np.ndarray
    unit: str  # "windows" (within one run) or "runs"

    @property
    def point(self) -> float:
        return stats.median(self.values)


def energy(measured: list[RunRecord], net: bool = False) -> Energy:
    """J/inference (gross, or net of idle) in its unit: every window of every seed in one
    run; each run's median over several runs (the table's J_per_inference is this
    sample's median)."""
    runs: dict[str | None, list[RunRecord]] = {}
    for r in measured:
        runs.setdefault(r.run, []).append(r)
    if len(runs) == 1:
        return Energy(np.array([j for r in measured for j in r.inference.j_per_inference(net)]), "windows")
    return Energy(np.array([stats.median([j for r in g for j in r.inference.j_per_inference(net)])
                            for g in runs.values()]), "runs")
