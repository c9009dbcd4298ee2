"""Suite -> the list of runs it asks for. Pure: no torch, no I/O.

A sweep's trials come first (every trial crossed with every seed: the selection needs
them all), then baselines (in suite order), then each variant after its parent, each
crossed with every seed. The order is deterministic, so a shard of it is too.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Mapping

from harness.errors import UserError
from harness.config import EAGER, ModelConfig, RuntimeConfig, Suite, TrainConfig


@dataclass(frozen=True)
class RunSpec:
    suite: str
    variant_id: str  # "cnn" for a baseline, "cnn.int8" style for a variant
    model: ModelConfig  # the suite model whose architecture (and encoder) the variant has
    seed: int
    train: TrainConfig
    technique: str | None = None
    parent: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    runtime: RuntimeConfig = EAGER  # how it runs when evaluated and measured
    #: A sweep trial: the hyperparameters it sets over its model's budget (already in
    #: ``train``). Trials are trained and validated, never evaluated or measured.
    trial: Mapping[str, Any] | None = None

    @property
    def key(self) -> str:
        return f"{self.variant_id}@seed{self.seed}"

    @property
    def variant(self) -> str:
        """The technique; "baseline" for a model; "runtime" for its parent under another
        runtime; "trial" for a sweep trial."""
        if self.trial is not None:
            return "trial"
        return self.technique or ("runtime" if self.parent else "baseline")


def describe(params: Mapping[str, Any]) -> str:
    """``lr=0.001, batch_size=32``; "-" for none."""
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


def trial_id(model: str, k: int) -> str:
    """``bert_tiny~t3``: the third trial of the sweep over bert_tiny (1-based)."""
    return f"{model}~t{k}"


def trials(suite: Suite) -> list[RunSpec]:
    """The sweep's trials, each crossed with every seed (trial-major)."""
    if suite.sweep is None:
        return []
    model = next(m for m in suite.models if m.name == suite.sweep.model)
    return [RunSpec(suite.name, trial_id(model.name, k), model, seed, replace(model.train, **values), trial=values)
            for k, values in enumerate(suite.sweep.trials, start=1) for seed in suite.seeds]


def expand(suite: Suite) -> list[RunSpec]:
    specs: list[RunSpec] = trials(suite)
    for m in suite.models:
        specs += [RunSpec(suite.name, m.name, m, seed, m.train, runtime=m.runtime) for seed in suite.seeds]
    by_name = {m.name: m for m in suite.models}
    for v in suite.variants:
        # The architecture the technique gives the variant (resolved at suite load).
        specs += [RunSpec(suite.name, v.id, by_name[v.architecture], seed, v.train, v.technique, v.parent, v.params,
                          v.runtime) for seed in suite.seeds]
    return specs


#: The most shards one matrix is cut into (a Slurm array's usual ceiling is far below).
MAX_SHARDS = 100_000


def check_shard(value: Any, where: str = "") -> tuple[int, int]:
    """``(i, n)`` with 1 <= i <= n <= MAX_SHARDS, whichever entry gave it (the command
    line's ``--shard i/n``, the API's ``shard=``); else one line."""
    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
          and 1 <= value[0] <= value[1] <= MAX_SHARDS)
    if not ok:
        raise UserError(f"{where or f'shard {value!r}'} is not (i, n) with 1 <= i <= n <= {MAX_SHARDS}; e.g. --shard 2/4 "
                        "(shard=(2, 4) from Python)")
    return int(value[0]), int(value[1])


def shard(specs: list[RunSpec], index: int, count: int) -> list[RunSpec]:
    """Shard ``index`` of ``count`` (1-based): every count-th run of the suite's
    (variant x seed) matrix in plan order, so shards are disjoint and cover it all.
    A shard that holds a variant but not its parent rebuilds the parent (or takes it
    from a shared cache) without recording it."""
    if not 1 <= index <= count:
        raise ValueError(f"shard {index}/{count} is out of range")
    return [s for k, s in enumerate(specs) if k % count == index - 1]
