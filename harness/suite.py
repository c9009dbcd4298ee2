"""Load a YAML suite file into frozen dataclasses, or say in one line what is wrong.

A suite is the unit a paper cites: task, models, training budget, measurement settings,
seeds and meter. Everything is validated here, before any data is read or any output
directory exists, so a typo costs a second rather than an hour of training.
"""

from __future__ import annotations

import copy
import re
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

import math

import numpy as np

from harness.config import (EAGER, GPU_IDLE, PRECISIONS, PROFILES, SWEEPABLE, MeasureConfig,  # noqa: F401
                            MeterConfig, ModelConfig, RuntimeConfig, Suite, SweepConfig, TaskConfig, TrainConfig,
                            ValidationConfig, VariantConfig)
from harness.errors import UserError

TOP_KEYS = {"name", "description", "task", "models", "variants", "seeds", "train",
            "measure", "meter", "allow_estimate", "device", "quick", "validation", "sweep"}
MODEL_KEYS = {"family", "options", "train", "runtime"}
VARIANT_KEYS = {"id", "parent", "technique", "params", "train", "runtime"}
TASK_KEYS = {"name", "options"}
SWEEP_KEYS = {"model", "grid", "random", "select_on"}
#: TrainConfig fields that may be None in YAML (``max_samples: null``).
OPTIONAL = {"max_samples", "target_accuracy", "work_batches"}


#: The most a suite file may hold: a suite is a page of YAML, not a data file.
MAX_SUITE_BYTES = 1 << 20
MAX_DEPTH = 32
#: Values (mappings, lists and scalars) a suite may hold once its aliases are expanded.
MAX_VALUES = 100_000
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
}
MAX_SEEDS = 1000
MAX_TRIALS = 10_000  # configurations in one sweep
MAX_SEED = 2**32 - 1  # numpy's seed range


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML keeps the last)."""


def _mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise UserError(f"suite key {key!r} is given twice (line {key_node.start_mark.line + 1}); YAML would keep "
                            "only the last: keep one")
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def check_values(value: Any, where: str, depth: int = 0, budget: list | None = None) -> None:
    """Every number in a suite is finite (NaN and infinity reach torch, numpy or the clock
    otherwise), the nesting is shallow, and the whole holds at most MAX_VALUES values as
    expanded: one walk over the whole file, task, model, technique and runtime options
    included, run by ``parse`` whatever the entry (a file, a mapping, overrides). The
    budget stops the walk itself: YAML aliases share one object many times over, so a
    few hundred bytes can stand for billions of values, and every later walk (merging,
    hashing, writing the resolved suite) would expand them."""
    budget = [MAX_VALUES, where] if budget is None else budget  # [values left, the whole's name]
    budget[0] -= 1
    if budget[0] < 0:
        raise UserError(f"{budget[1]} expands to more than {MAX_VALUES:,} values (YAML aliases "
                        "repeated within each other?); a suite is a page of YAML: write it out")
    if depth > MAX_DEPTH:
        raise UserError(f"{where} is nested more than {MAX_DEPTH} levels deep; a suite is a page of YAML")
    if isinstance(value, float) and not math.isfinite(value):
        raise UserError(f"{where} is {value}; every number in a suite must be finite")
    if isinstance(value, Mapping):
        for k, v in value.items():
            check_values(v, f"{where}.{k}", depth + 1, budget)
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_values(v, f"{where}[{i}]", depth + 1, budget)


def load(path: str | Path, profile: str = "full") -> Suite:
    """Read, merge the profile, validate. Raises UserError with a one-line message."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"suite file {path} not found; pass a YAML file such as benchmarks/digits.yaml")
    if path.stat().st_size > MAX_SUITE_BYTES:
        raise UserError(f"suite file {path} is {path.stat().st_size:,} bytes, over the {MAX_SUITE_BYTES:,} a suite "
                        "may hold; pass a YAML suite such as benchmarks/digits.yaml")
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except RecursionError:
        raise UserError(f"suite file {path} is nested too deeply; a suite is a page of YAML") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"suite file {path} is not valid YAML{where}; fix the syntax or pass a .yaml suite") from None
    except UnicodeDecodeError:
        raise UserError(f"suite file {path} is not a text file; pass a YAML suite such as benchmarks/digits.yaml") from None
    if not isinstance(raw, dict):
        raise UserError(f"suite file {path} must hold a YAML mapping (name:, task:, models:, ...), not {type(raw).__name__}")
    return parse(raw, str(path), profile)


def parse(raw: Mapping[str, Any], where: str, profile: str = "full") -> Suite:
    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r}; use one of: {', '.join(PROFILES)}")
    if not isinstance(raw, Mapping):
        raise UserError(f"{where} must be a mapping (name:, task:, models:, ...), not {type(raw).__name__}")
    check_values(raw, where)
    _known(raw, TOP_KEYS, f"{where}")
    merged = copy.deepcopy(dict(raw))
    quick = merged.pop("quick", None) or {}
    if not isinstance(quick, dict):
        raise UserError(f"'quick' in {where} must be a mapping of overrides")
    _known(quick, TOP_KEYS - {"quick", "name"}, f"{where} (quick)")
    if profile == "quick":
        merged = _deep_merge(merged, quick)

    name = _req(merged, "name", str, where)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or ".." in name:
        raise UserError(f"suite name {name!r} in {where} must be an identifier (letters, digits, _ . -, at most 64, "
                        "no '..'): it names the run's folder under results/")
    task_raw = _req(merged, "task", dict, where)
    _known(task_raw, TASK_KEYS, f"{where} task")
    task = TaskConfig(name=_req(task_raw, "name", str, f"{where} task"),
                      options=dict(task_raw.get("options") or {}))

    default_train = _train(merged.get("train") or {}, TrainConfig(), f"{where} train")
    models_raw = _req(merged, "models", dict, where)
    if not models_raw:
        raise UserError(f"{where} lists no models; add at least one under 'models:'")
    models = []
    for mname, mraw in models_raw.items():
        mwhere = f"{where} models.{mname}"
        if not isinstance(mraw, dict):
            raise UserError(f"{mwhere} must be a mapping with 'family:'")
        _known(mraw, MODEL_KEYS, mwhere)
        models.append(ModelConfig(
            name=str(mname),
            family=_req(mraw, "family", str, mwhere),
            options=dict(mraw.get("options") or {}),
            train=_train(mraw.get("train") or {}, default_train, f"{mwhere}.train"),
            runtime=_runtime(mraw.get("runtime"), f"{mwhere}.runtime"),
        ))

    from harness.compress import TECHNIQUES

    variants = []
    # A variant's training budget starts from its architecture's (the parent's, or the
    # model the technique builds, e.g. distill's student), overridden by its own.
    budget = {m.name: m.train for m in models}
    arch = {m.name: m.name for m in models}
    for i, vraw in enumerate(merged.get("variants") or []):
        vwhere = f"{where} variants[{i}]"
        if not isinstance(vraw, dict):
            raise UserError(f"{vwhere} must be a mapping with id, parent, and technique and/or runtime")
        _known(vraw, VARIANT_KEYS, vwhere)
        vtrain = vraw.get("train")
        params = dict(vraw.get("params") or {})
        vid, parent = _req(vraw, "id", str, vwhere), _req(vraw, "parent", str, vwhere)
        runtime = _runtime(vraw.get("runtime"), f"{vwhere}.runtime")
        if "technique" not in vraw and runtime == EAGER:
            raise UserError(f"{vwhere} ({vid}) changes nothing from its parent; set 'technique:', 'runtime:' or both")
        technique = _req(vraw, "technique", str, vwhere) if "technique" in vraw else None
        if technique is None and (params or vtrain):
            raise UserError(f"{vwhere} sets params or train but no technique; add 'technique:' or drop them")
        architecture = (TECHNIQUES.get(technique)().architecture(params, arch.get(parent, parent)) if technique
                        else arch.get(parent, parent))
        base = budget.get(architecture if architecture != arch.get(parent) else parent, default_train)
        variants.append(VariantConfig(
            id=vid, parent=parent, technique=technique, params=params,
            train=_train(vtrain or {}, base, f"{vwhere}.train"), architecture=architecture, runtime=runtime,
        ))
        budget[vid] = variants[-1].train
        arch[vid] = architecture

    seeds = merged.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise UserError(f"'seeds' in {where} must be a non-empty list of integers, e.g. [0, 1, 2]")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"'seeds' in {where} repeats a seed; list each seed once")
    if len(seeds) > MAX_SEEDS or not all(0 <= x <= MAX_SEED for x in seeds):
        raise UserError(f"'seeds' in {where} must be at most {MAX_SEEDS} integers from 0 to {MAX_SEED}, got "
                        f"{seeds[:5]}{'...' if len(seeds) > 5 else ''}")

    measure_raw, batch_sizes = merged.get("measure") or {}, None
    if isinstance(measure_raw, dict):  # batch_sizes is a list: checked here, not by type
        measure_raw = dict(measure_raw)
        batch_sizes = measure_raw.pop("batch_sizes", None)
    measure = _dataclass_from(MeasureConfig, measure_raw, MeasureConfig(), f"{where} measure")
    if batch_sizes is not None:
        top = LIMITS["MeasureConfig"]["batch_size"][1]
        if (not isinstance(batch_sizes, list) or not batch_sizes
                or len(batch_sizes) > 64
                or not all(isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= top for b in batch_sizes)
                or len(set(batch_sizes)) != len(batch_sizes)):
            raise UserError(f"measure.batch_sizes in {where} must be a list of at most 64 distinct integers from 1 to "
                            f"{top:,} (measure.batch_size's range), e.g. [1, 8, 64, 256], got {batch_sizes!r}")
        measure = replace(measure, batch_sizes=tuple(batch_sizes))
    if measure.repetitions < 6:
        raise UserError(f"measure.repetitions in {where} is {measure.repetitions}; use at least 6 "
                        "(the fewest for a distribution-free 95% CI of the median)")
    if measure.warmup < 1:
        raise UserError(f"measure.warmup in {where} must be >= 1 (the warm-up pass also calibrates the window length)")
    if measure.min_window_s <= 0 or measure.batch_size < 1 or measure.idle_s < 0:
        raise UserError(f"measure.min_window_s and measure.batch_size in {where} must be positive, idle_s >= 0")
    from harness.work import METRICS as WORK_METRICS

    if measure.work not in WORK_METRICS:
        raise UserError(f"measure.work in {where} is {measure.work!r}; use one of: {', '.join(WORK_METRICS)}")
    allow_estimate = merged.get("allow_estimate", False)
    if not isinstance(allow_estimate, bool):
        raise UserError(f"'allow_estimate' in {where} must be true or false")

    device = merged.get("device", "auto")
    from harness.device import parse as parse_device

    parse_device(device, f"'device' in {where}")

    sweep = _sweep(merged["sweep"], {m.name: m for m in models}, where) if "sweep" in merged else None
    curves = any(t.curve for t in [m.train for m in models] + [v.train for v in variants])
    validation = None
    if "validation" in merged or curves or sweep is not None:
        validation = _dataclass_from(ValidationConfig, merged.get("validation") or {}, ValidationConfig(),
                                     f"{where} validation")
        if not 0 < validation.fraction < 1 or validation.max_examples < 1:
            raise UserError(f"validation in {where}: fraction must be in (0, 1) and max_examples >= 1, got "
                            f"fraction {validation.fraction}, max_examples {validation.max_examples}")

    suite = Suite(
        name=name, path=where, profile=profile,
        description=str(merged.get("description", "")),
        task=task, models=tuple(models), variants=tuple(variants), seeds=tuple(seeds),
        measure=measure, meter=_meter(merged.get("meter", "auto"), where), allow_estimate=allow_estimate,
        resolved=merged, device=device, validation=validation, sweep=sweep,
    )
    _check_references(suite)
    return suite


def _check_references(suite: Suite) -> None:
    """Names that point into registries or at other entries must resolve now."""
    from harness import compress, meters, models, runtimes, tasks
    from harness.registry import check_options

    where = suite.path
    check_options(tasks.TASKS.get(suite.task.name), suite.task.options, f"{where} task.options", skip=1)
    for m in suite.models:
        check_options(models.MODELS.get(m.family), m.options, f"{where} models.{m.name}.options", skip=1)
    for entry, label in [(m, f"models.{m.name}") for m in suite.models] + [(v, f"variant {v.id!r}") for v in suite.variants]:
        runtimes.check(entry.runtime, f"{where} {label}.runtime")
        # a runtime's file given by path is the whole model: a variant of a parent, nothing to compress
        if runtimes.create(entry.runtime).given() is not None:
            if isinstance(entry, ModelConfig) or entry.technique is not None:
                raise UserError(f"{where} {label}.runtime gives a file by path, which is the whole model: put it "
                                "on a variant with a parent (the row it is compared with) and no technique")
    known = {m.name for m in suite.models}
    for v in suite.variants:
        if v.id in known:
            raise UserError(f"variant id {v.id!r} in {where} is used twice; give each model and variant its own id")
        if v.parent not in known:
            raise UserError(f"variant {v.id!r} in {where} names parent {v.parent!r}, which is not defined above it; "
                            f"use one of: {', '.join(sorted(known))}")
        if v.technique is not None:
            technique = compress.TECHNIQUES.get(v.technique)()
            technique.validate(v.params, f"{where} variant {v.id!r}", {m.name for m in suite.models})
        known.add(v.id)
    meters.check_name(suite.meter.name, where)


def _runtime(raw: Any, where: str) -> RuntimeConfig:
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


def _sweep(raw: Any, models: dict[str, ModelConfig], where: str) -> SweepConfig:
    """``sweep: {model:, grid: {lr: [...], ...}}`` or ``random: {n:, seed:, lr: {log_uniform: [a, b]}}``:
    every trial's training budget is the model's with the trial's values."""
    where = f"{where} sweep"
    if not isinstance(raw, dict):
        raise UserError(f"{where} must be a mapping with model:, grid: (or random:) and select_on: validation")
    _known(raw, SWEEP_KEYS, where)
    model = _req(raw, "model", str, where)
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
            _sweepable(name, where)
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
        dists = {name: _distribution(name, spec, getattr(base, _sweepable(name, where)), f"{where}.random.{name}")
                 for name, spec in space.items()}
        combos = [{name: draw(rng) for name, draw in dists.items()} for _ in range(n)]
    trials = []
    for k, combo in enumerate(combos):
        cfg = _train(combo, base, f"{where} trial {k + 1} ({combo})")  # each trial's values checked like train:
        trials.append({name: getattr(cfg, name) for name in combo})
    return SweepConfig(model=model, trials=tuple(trials), method=method, space=raw[method], select_on=select_on)


def _sweepable(name: str, where: str) -> str:
    if name not in SWEEPABLE:
        raise UserError(f"{where}: unknown hyperparameter {name!r}; a sweep may vary: {', '.join(SWEEPABLE)}")
    return name


def _distribution(name: str, spec: Any, default: Any, where: str):
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


def _meter(raw: Any, where: str) -> MeterConfig:
    """``meter: auto`` is shorthand for ``meter: {name: auto}``."""
    if isinstance(raw, str):
        raw = {"name": raw}
    cfg = _dataclass_from(MeterConfig, raw, MeterConfig(), f"{where} meter")
    if cfg.gpu_idle not in GPU_IDLE:
        raise UserError(f"meter.gpu_idle in {where} must be one of {', '.join(GPU_IDLE)}, not {cfg.gpu_idle!r}")
    return cfg


def _train(raw: Any, base: TrainConfig, where: str) -> TrainConfig:
    cfg = _dataclass_from(TrainConfig, raw, base, where)
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


def _dataclass_from(cls: type, raw: Any, base: Any, where: str) -> Any:
    if not isinstance(raw, dict):
        raise UserError(f"{where} must be a mapping")
    names = {f.name: f for f in fields(cls)}
    _known(raw, set(names), where)
    values = {}
    for key, value in raw.items():
        default = getattr(base, key)
        if value is None and key in OPTIONAL:
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


def _known(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in raw:
        if key not in allowed:
            raise UserError(f"unknown suite key {key!r} in {where}; allowed: {', '.join(sorted(allowed))}")


def _req(raw: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in raw:
        raise UserError(f"{where} is missing required key {key!r}")
    value = raw[key]
    if not isinstance(value, kind):
        raise UserError(f"{where}: {key!r} must be a {kind.__name__}, got {value!r}")
    return value


def with_overrides(suite: Suite, over: Mapping[str, Any]) -> Suite:
    """``suite`` re-resolved with ``over`` merged into its resolved mapping (a command-line
    override such as ``--work``): checked like the file, and part of its config hash."""
    check_values(over, "overrides")
    return replace(parse(_deep_merge(dict(suite.resolved), over), suite.path, "full"), profile=suite.profile)


def _deep_merge(base: dict, over: Mapping) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(dict(out[key]), value)
        else:
            out[key] = copy.deepcopy(value)
    return out
