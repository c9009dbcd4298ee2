"""A sweep's choice: each trial's result (final validation accuracy, energy of its
training and validation passes) as it is obtained, then the trial with the best mean
validation accuracy over seeds, and what the search cost."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from harness.config import Suite
from harness.plan import RunSpec, describe


@dataclass
class Selection:
    suite: Suite
    trials: list[RunSpec]
    log: Callable[[str], None] = print
    #: (trial id, seed) -> what selection needs: params, val_accuracy, energy_J, run_key.
    trial_results: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    _choice: dict[str, Any] | None = None

    def note_trial(self, spec: RunSpec, curve: dict[str, Any] | None, windows_j: float) -> None:
        """What selection needs from a trial: its final validation accuracy and its energy
        (its creation windows' ``windows_j`` and its validation passes: the search needs both)."""
        joules = windows_j + sum(w["energy_j"] for w in (curve or {}).get("eval_windows", []))
        self.trial_results[(spec.variant_id, spec.seed)] = {
            "trial": spec.variant_id, "seed": spec.seed, "run_key": spec.key, "params": dict(spec.trial or {}),
            "val_accuracy": curve["points"][-1]["val_accuracy"] if curve else None, "energy_J": joules}

    def choose(self, obtain: Callable[[RunSpec], Any]) -> dict[str, Any]:
        """The sweep's choice: the trial with the best mean validation accuracy over seeds
        (the first on a tie). Trials not yet at hand are obtained first (``obtain``: from
        the cache, else trained; it notes each result here), without being recorded."""
        if self._choice is None:
            for spec in self.trials:
                if (spec.variant_id, spec.seed) not in self.trial_results:
                    self.log(f"  obtaining trial {spec.key} for the selection (not recorded here)")
                    obtain(spec)
            rows = [self.trial_results[(s.variant_id, s.seed)] for s in self.trials]
            means: dict[str, list[float]] = {}
            for r in rows:
                means.setdefault(r["trial"], []).append(r["val_accuracy"])
            best = max(means, key=lambda t: float(np.mean(means[t])))  # max keeps the first of equals
            chosen = next(s for s in self.trials if s.variant_id == best)
            sweep = self.suite.sweep
            self._choice = {
                "model": sweep.model, "method": sweep.method, "space": sweep.space, "select_on": sweep.select_on,
                "selected": best, "params": dict(chosen.trial), "train": chosen.train,
                "mean_val_accuracy": {t: float(np.mean(v)) for t, v in means.items()},
                "trials": rows, "tuning_J": sum(r["energy_J"] for r in rows),
                # per seed, like a row's train J (a mean over seeds): lineage and J at N
                # queries add it to per-seed figures
                "tuning_J_per_seed": sum(r["energy_J"] for r in rows) / len(self.suite.seeds)}
            self.log(f"  sweep over {sweep.model}: selected {best} ({describe(chosen.trial)}; mean validation "
                     f"accuracy {self._choice['mean_val_accuracy'][best]:.4f} over {len(self.suite.seeds)} "
                     f"seed(s)); {len(rows)} trial runs cost {self._choice['tuning_J']:.1f} J "
                     f"({self._choice['tuning_J_per_seed']:.1f} J per seed)")
        return self._choice
