"""Load a YAML suite file into frozen dataclasses, or say in one line what is wrong.

A suite is the unit a paper cites: task, models, training budget, measurement settings,
seeds and meter. Everything is validated here, before any data is read or any output
directory exists, so a typo costs a second rather than an hour of training.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

from harness import suite_file, suite_values
from harness.config import (EAGER, GPU_IDLE, PRECISIONS, PROFILES, SWEEPABLE, DecideConfig, MeasureConfig,  # noqa: F401
                            MeterConfig, ModelConfig, RuntimeConfig, Suite, SweepConfig, TaskConfig, TrainConfig,
                            ValidationConfig, VariantConfig)
from harness.errors import UserError
from harness.suite_file import check_values

TOP_KEYS = {"name", "description", "task", "models", "variants", "seeds", "train",
            "measure", "meter", "allow_estimate", "device", "quick", "validation", "sweep", "decide"}


MODEL_KEYS = {"family", "options", "train", "runtime"}


VARIANT_KEYS = {"id", "parent", "technique", "params", "train", "runtime"}


TASK_KEYS = {"name", "options"}


MAX_SEEDS = 1000


def load(path: str | Path, profile: str = "full") -> Suite:
    """Read, merge the profile, validate. Raises UserError with a one-line message."""
    return parse(suite_file.read(path), str(Path(path)), profile)


def parse(raw: Mapping[str, Any], where: str, profile: str = "full") -> Suite:
    if profile not in PROFILES:
        raise UserError(f"unknown profile {profile!r}; use one of: {', '.join(PROFILES)}")
    if not isinstance(raw, Mapping):
        raise UserError(f"{where} must be a mapping (name:, task:, models:, ...), not {type(raw).__name__}")
    check_values(raw, where)
    suite_values.known(raw, TOP_KEYS, f"{where}")
    merged = copy.deepcopy(dict(raw))
    quick = merged.pop("quick", None) or {}
    if not isinstance(quick, dict):
        raise UserError(f"'quick' in {where} must be a mapping of overrides")
    suite_values.known(quick, TOP_KEYS - {"quick", "name"}, f"{where} (quick)")
    if profile == "quick":
        merged = suite_file.deep_merge(merged, quick)

    name = suite_values.req(merged, "name", str, where)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", name) or ".." in name:
        raise UserError(f"suite name {name!r} in {where} must be an identifier (letters, digits, _ . -, at most 64, "
                        "no '..'): it names the run's folder under results/")
    task_raw = suite_values.req(merged, "task", dict, where)
    suite_values.known(task_raw, TASK_KEYS, f"{where} task")
    task = TaskConfig(name=suite_values.req(task_raw, "name", str, f"{where} task"),
                      options=dict(task_raw.get("options") or {}))

    default_train = suite_values.train(merged.get("train") or {}, TrainConfig(), f"{where} train")
    models_raw = suite_values.req(merged, "models", dict, where)
    if not models_raw:
        raise UserError(f"{where} lists no models; add at least one under 'models:'")
    models = []
    for mname, mraw in models_raw.items():
        mwhere = f"{where} models.{mname}"
        if not isinstance(mraw, dict):
            raise UserError(f"{mwhere} must be a mapping with 'family:'")
        suite_values.known(mraw, MODEL_KEYS, mwhere)
        models.append(ModelConfig(
            name=str(mname),
            family=suite_values.req(mraw, "family", str, mwhere),
            options=dict(mraw.get("options") or {}),
            train=suite_values.train(mraw.get("train") or {}, default_train, f"{mwhere}.train"),
            runtime=suite_values.runtime(mraw.get("runtime"), f"{mwhere}.runtime"),
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
        suite_values.known(vraw, VARIANT_KEYS, vwhere)
        vtrain = vraw.get("train")
        params = dict(vraw.get("params") or {})
        vid, parent = suite_values.req(vraw, "id", str, vwhere), suite_values.req(vraw, "parent", str, vwhere)
        runtime = suite_values.runtime(vraw.get("runtime"), f"{vwhere}.runtime")
        if "technique" not in vraw and runtime == EAGER:
            raise UserError(f"{vwhere} ({vid}) changes nothing from its parent; set 'technique:', 'runtime:' or both")
        technique = suite_values.req(vraw, "technique", str, vwhere) if "technique" in vraw else None
        if technique is None and (params or vtrain):
            raise UserError(f"{vwhere} sets params or train but no technique; add 'technique:' or drop them")
        architecture = (TECHNIQUES.get(technique)().architecture(params, arch.get(parent, parent)) if technique
                        else arch.get(parent, parent))
        base = budget.get(architecture if architecture != arch.get(parent) else parent, default_train)
        variants.append(VariantConfig(
            id=vid, parent=parent, technique=technique, params=params,
            train=suite_values.train(vtrain or {}, base, f"{vwhere}.train"), architecture=architecture, runtime=runtime,
        ))
        budget[vid] = variants[-1].train
        arch[vid] = architecture

    seeds = merged.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise UserError(f"'seeds' in {where} must be a non-empty list of integers, e.g. [0, 1, 2]")
    if len(set(seeds)) != len(seeds):
        raise UserError(f"'seeds' in {where} repeats a seed; list each seed once")
    if len(seeds) > MAX_SEEDS or not all(0 <= x <= suite_values.MAX_SEED for x in seeds):
        raise UserError(f"'seeds' in {where} must be at most {MAX_SEEDS} integers from 0 to {suite_values.MAX_SEED}, got "
                        f"{seeds[:5]}{'...' if len(seeds) > 5 else ''}")

    measure_raw, batch_sizes = merged.get("measure") or {}, None
    if isinstance(measure_raw, dict):  # batch_sizes is a list: checked here, not by type
        measure_raw = dict(measure_raw)
        batch_sizes = measure_raw.pop("batch_sizes", None)
    measure = suite_values.dataclass_from(MeasureConfig, measure_raw, MeasureConfig(), f"{where} measure")
    if batch_sizes is not None:
        top = suite_values.LIMITS["MeasureConfig"]["batch_size"][1]
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

    sweep = suite_values.sweep(merged["sweep"], {m.name: m for m in models}, where) if "sweep" in merged else None
    curves = any(t.curve for t in [m.train for m in models] + [v.train for v in variants])
    validation = None
    if "validation" in merged or curves or sweep is not None:
        validation = suite_values.dataclass_from(ValidationConfig, merged.get("validation") or {}, ValidationConfig(),
                                     f"{where} validation")
        if not 0 < validation.fraction < 1 or validation.max_examples < 1:
            raise UserError(f"validation in {where}: fraction must be in (0, 1) and max_examples >= 1, got "
                            f"fraction {validation.fraction}, max_examples {validation.max_examples}")

    decide = suite_values.dataclass_from(DecideConfig, merged.get("decide") or {}, DecideConfig(), f"{where} decide")
    suite = Suite(
        name=name, path=where, profile=profile,
        description=str(merged.get("description", "")),
        task=task, models=tuple(models), variants=tuple(variants), seeds=tuple(seeds),
        measure=measure, meter=suite_values.meter(merged.get("meter", "auto"), where), allow_estimate=allow_estimate,
        resolved=merged, device=device, validation=validation, sweep=sweep, decide=decide,
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


def with_overrides(suite: Suite, over: Mapping[str, Any]) -> Suite:
    """``suite`` re-resolved with ``over`` merged into its resolved mapping (a command-line
    override such as ``--work``): checked like the file, and part of its config hash."""
    check_values(over, "overrides")
    return replace(parse(suite_file.deep_merge(dict(suite.resolved), over), suite.path, "full"), profile=suite.profile)
