"""The typed values of a suite: each section (train:, meter:, a runtime, a sweep) from its
mapping into its frozen dataclass, every key known, every value of its type and within
its declared range (``LIMITS``), or one line naming it."""

from __future__ import annotations

import math
from dataclasses import fields, replace
from typing import Any, Mapping

import numpy as np

from harness.config import EAGER, GPU_IDLE, PRECISIONS, SWEEPABLE, MeterConfig, ModelConfig, RuntimeConfig, SweepConfig, TrainConfig
from harness.errors import UserError

SWEEP_KEYS = {"model", "grid", "random", "select_on"}


#: TrainConfig fields that may be None in YAML (``max_samples: null``).
OPTIONAL = {"max_samples", "target_accuracy", "work_batches"}
#: Fields whose None is spelled ``all`` too (``work_batches: all``: every batch).
ALL = {"work_batches"}


#: Ranges of the suite's own numeric options, declared once (the registries' options
#: are checked for finiteness by the same walk, and by their own constructors).
LIMITS: dict[str, dict[str, tuple[float | None, float]]] = {
    # (lowest, highest); None: the lower bound is checked below with its own reason
    "TrainConfig": {"epochs": (None, 10_000), "batch_size": (None, 1_000_000), "lr": (None, 10),
                    "max_samples": (None, 10**9), "eval_every": (None, 10**7), "evals_per_epoch": (None, 10_000),
                    "weight_decay": (0, 10)},
    "MeasureConfig": {"batch_size": (None, 1_000_000), "warmup": (None, 10_000), "repetitions": (None, 10_000),
                      "min_window_s": (None, 3600), "idle_s": (None, 3600),
                      "work_passes": (1, 100), "work_batches": (1, 1_000_000)},
    "DecideConfig": {"accuracy_margin": (0, 0.5), "accuracy_alpha": (1e-6, 0.5), "energy_alpha": (1e-6, 0.5)},
}


MAX_TRIALS = 10_000  # configurations in one sweep


MAX_SEED = 2**32 - 1  # numpy's seed range


def runtime(raw: Any, where: str) -> RuntimeConfig:
    """``runtime: onnxruntime`` is shorthand for ``runtime: {name: onnxruntime}``; the
    mapping's other keys are the runtime's options (checked against the registry)."""
    if raw is None:
        return EAGER
    if isinstance(raw, str):
        return RuntimeConfig(raw)
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise UserError(f"{where} must be a runtime name (eager, compile, onnxruntime) or a mapping with 'name:', "
                        f"got {raw!r}")
    options = {k: v for k, v in raw.items() if k != "name"}
    return RuntimeConfig(raw["name"], options) if options or raw["name"] != "eager" else EAGER


def sweep(raw: Any, models: dict[str, ModelConfig], where: str) -> SweepConfig:
    """``sweep: {model:, grid: {lr: [...], ...}}`` or ``random: {n:, seed:, lr: {log_uniform: [a, b]}}``:
    every trial's training budget is the model's with the trial's values."""
    where = f"{where} sweep"
    if not isinstance(raw, dict):
        raise UserError(f"{where} must be a mapping with model:, grid: (or random:) and select_on: validation")
    known(raw, SWEEP_KEYS, where)
    model = req(raw, "model", str, where)
    if model not in models:
        raise UserError(f"{where} names model {model!r}, which the suite does not define; use one of: "
                        f"{', '.join(models)}")
    select_on = raw.get("select_on", "validation")
    if select_on == "eval":
        raise UserError(f"{where}: select_on: eval is refused: choosing hyperparameters on the eval split tunes on "
                        "it, and its accuracy would no longer be held out; use select_on: validation (carved from "
                        "the training data)")
    if select_on != "validation":
        raise UserError(f"{where}: select_on must be 'validation', not {select_on!r}")
    if ("grid" in raw) == ("random" in raw):
        raise UserError(f"{where} needs exactly one of grid: {{lr: [...], batch_size: [...]}} or "
                        "random: {n: 8, lr: {log_uniform: [1.0e-4, 1.0e-2]}}")
    method = "grid" if "grid" in raw else "random"
    space = raw[method]
    if not isinstance(space, dict) or not space:
        raise UserError(f"{where}.{method} is empty; give at least one hyperparameter, e.g. lr: [3.0e-4, 1.0e-3]")
    base = models[model].train
    if method == "grid":
        names = list(space)
        for name in names:
            sweepable(name, where)
            if not isinstance(space[name], list) or not space[name]:
                raise UserError(f"{where}.grid.{name} must be a non-empty list of values, got {space[name]!r}")
        size = math.prod(len(space[name]) for name in names)
        if size > MAX_TRIALS:
            raise UserError(f"{where}.grid has {size:,} configurations, over the {MAX_TRIALS:,} a sweep may run; "
                            "narrow it or use random: {n: ...}")
        combos: list[dict[str, Any]] = [{}]
        for name in names:
            combos = [{**c, name: v} for c in combos for v in space[name]]
    else:
        space = dict(space)
        n, seed = space.pop("n", None), space.pop("seed", 0)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_TRIALS or not isinstance(seed, int) \
                or not 0 <= seed <= MAX_SEED:
            raise UserError(f"{where}.random needs n: a positive integer up to {MAX_TRIALS:,} (the number of trials) "
                            f"and seed from 0 to {MAX_SEED}, got n={n!r}, seed={seed!r}")
        if not space:
            raise UserError(f"{where}.random is empty; give at least one hyperparameter, e.g. "
                            "lr: {log_uniform: [1.0e-4, 1.0e-2]}")
        rng = np.random.default_rng(seed)
        dists = {name: distribution(name, spec, getattr(base, sweepable(name, where)), f"{where}.random.{name}")
                 for name, spec in space.items()}
        combos = [{name: draw(rng) for name, draw in dists.items()} for _ in range(n)]
    trials = []
    for k, combo in enumerate(combos):
        cfg = train(combo, base, f"{where} trial {k + 1} ({combo})")  # each trial's values checked like train:
        trials.append({name: getattr(cfg, name) for name in combo})
    return SweepConfig(model=model, trials=tuple(trials), method=method, space=raw[method], select_on=select_on)


def sweepable(name: str, where: str) -> str:
    if name not in SWEEPABLE:
        raise UserError(f"{where}: unknown hyperparameter {name!r}; a sweep may vary: {', '.join(SWEEPABLE)}")
    return name


def distribution(name: str, spec: Any, default: Any, where: str):
    """A random-search draw: {choice: [...]}, {uniform: [a, b]} or {log_uniform: [a, b]} (floats)."""
    if not isinstance(spec, dict) or len(spec) != 1:
        raise UserError(f"{where} must be one of {{choice: [...]}}, {{uniform: [a, b]}}, {{log_uniform: [a, b]}}")
    (kind, arg), = spec.items()
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise UserError(f"{where}.choice must be a non-empty list")
        return lambda rng: arg[int(rng.integers(len(arg)))]
    if kind not in ("uniform", "log_uniform"):
        raise UserError(f"{where}: unknown distribution {kind!r}; use choice, uniform or log_uniform")
    if not isinstance(default, float):
        raise UserError(f"{where}: {name} takes whole values; use {{choice: [...]}}")
    try:
        lo, hi = (float(v) for v in arg)
    except (TypeError, ValueError):
        raise UserError(f"{where}.{kind} must be [low, high], got {arg!r}") from None
    if not lo < hi or (kind == "log_uniform" and lo <= 0):
        raise UserError(f"{where}.{kind} must be [low, high] with low < high" + (" and low > 0" if kind != "uniform" else ""))
    if kind == "uniform":
        return lambda rng: float(rng.uniform(lo, hi))
    return lambda rng: float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def meter(raw: Any, where: str) -> MeterConfig:
    """``meter: auto`` is shorthand for ``meter: {name: auto}``."""
    if isinstance(raw, str):
        raw = {"name": raw}
    cfg = dataclass_from(MeterConfig, raw, MeterConfig(), f"{where} meter")
    if cfg.gpu_idle not in GPU_IDLE:
        raise UserError(f"meter.gpu_idle in {where} must be one of {', '.join(GPU_IDLE)}, not {cfg.gpu_idle!r}")
    return cfg


def train(raw: Any, base: TrainConfig, where: str) -> TrainConfig:
    cfg = dataclass_from(TrainConfig, raw, base, where)
    if cfg.epochs < 1 or cfg.batch_size < 1 or cfg.lr <= 0:
        raise UserError(f"{where}: epochs and batch_size must be >= 1 and lr > 0")
    if cfg.max_samples is not None and cfg.max_samples < 1:
        raise UserError(f"{where}: max_samples must be a positive integer or null")
    if cfg.schedule not in ("constant", "linear"):
        raise UserError(f"{where}: schedule must be 'constant' or 'linear', not {cfg.schedule!r}")
    if not 0 <= cfg.warmup_fraction < 1:
        raise UserError(f"{where}: warmup_fraction must be in [0, 1)")
    if cfg.precision not in PRECISIONS:
        raise UserError(f"{where}: precision must be one of {', '.join(PRECISIONS)}, not {cfg.precision!r}")
    if cfg.eval_every < 0 or cfg.evals_per_epoch < 0:
        raise UserError(f"{where}: eval_every and evals_per_epoch must be >= 0 (0: no training curve)")
    if cfg.target_accuracy is not None and not 0 < cfg.target_accuracy <= 1:
        raise UserError(f"{where}: target_accuracy must be in (0, 1] (a validation accuracy), got "
                        f"{cfg.target_accuracy}; omit it for 99% of the final validation accuracy")
    return cfg


def dataclass_from(cls: type, raw: Any, base: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise UserError(f"{where} must be a mapping")
    names = {f.name: f for f in fields(cls)}
    known(raw, set(names), where)
    values = {}
    for key, value in raw.items():
        default = getattr(base, key)
        if (value is None and key in OPTIONAL) or (key in ALL and value == "all"):
            values[key] = None
            continue
        want = (float if isinstance(default, float) or key == "target_accuracy"
                else type(default) if default is not None else int)
        if want is float and not isinstance(value, bool):
            try:  # YAML 1.1 reads 3e-4 as a string; accept any number spelling
                value = float(value)
            except (TypeError, ValueError):
                pass
        if not isinstance(value, want) or (isinstance(value, bool) and want is not bool):
            raise UserError(f"{where}.{key} must be {want.__name__}, got {value!r}")
        lo, hi = LIMITS.get(cls.__name__, {}).get(key, (None, None))
        if hi is not None and isinstance(value, (int, float)) and (value > hi or (lo is not None and value < lo)):
            raise UserError(f"{where}.{key} is {value!r}; it must be {f'from {lo:g} ' if lo is not None else ''}"
                            f"at most {hi:g}")
        values[key] = value
    return replace(base, **values)


def known(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in raw:
        if key not in allowed:
            raise UserError(f"unknown suite key {key!r} in {where}; allowed: {', '.join(sorted(allowed))}")


def req(raw: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in raw:
        raise UserError(f"{where} is missing required key {key!r}")
    value = raw[key]
    if not isinstance(value, kind):
        raise UserError(f"{where}: {key!r} must be a {kind.__name__}, got {value!r}")
    return value
