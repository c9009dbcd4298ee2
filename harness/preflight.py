"""What is checked before a run folder exists, against the suite's own models: whether
each model fits the device's free memory (fits.py), a given runtime file's inputs and
batch shapes (an ONNX file), and a technique's checks against its parent's architecture
(a checkpoint's keys and shapes). One fresh module (and encoder) per architecture."""

from __future__ import annotations

from typing import Any, Callable

import torch

from harness import runtimes
from harness.compress import TECHNIQUES, Technique
from harness.config import ModelConfig, Suite
from harness.device import Device
from harness.models import ModelBundle
from harness.plan import RunSpec
from harness.tasks import TaskData


def _every_batch_shape(enc: Any, sizes: tuple[int, ...] | list[int]) -> list[dict[str, torch.Tensor]]:
    """One batch of every size a run feeds a model: each batch size (at most the split's
    length) and each last, shorter batch, taken from the split's own buckets (so token
    batches keep the widths the run will use)."""
    out, seen = [], set()
    for b in sizes:
        for idx in enc.buckets(b):
            if len(idx) not in seen:
                seen.add(len(idx))
                out.append(enc.batch(idx))
    return out


def check(suite: Suite, task: TaskData, device: Device, specs: list[RunSpec],
      build: Callable[[ModelConfig], ModelBundle]) -> None:
    """Checks a technique or a runtime makes against its parent's architecture (a
    checkpoint's keys and shapes, an ONNX file's inputs), before the run folder
    exists: one fresh module (and encoder) per architecture. First, whether each
    model fits the memory the device has free (fits.py)."""
    from harness import fits
    from harness.models import MODELS

    fits.check(suite, task, device, lambda m: MODELS.get(m.family)(task, **m.options))
    bundles: dict[str, Any] = {}
    seen: set[str] = set()
    for spec in specs:  # a given runtime file: its inputs are the ones the encoder gives
        runtime = runtimes.create(spec.runtime)
        if spec.variant_id in seen or runtime.given() is None:
            continue
        seen.add(spec.variant_id)
        if spec.model.name not in bundles:
            bundles[spec.model.name] = build(spec.model)
        enc = bundles[spec.model.name].encode(task.eval)
        runtime.preflight(list(enc.features), f"{suite.path} variant {spec.variant_id!r}",
                          _every_batch_shape(enc, suite.measure.all_batch_sizes()), task.num_labels)
    built = {name: b.module for name, b in bundles.items()}
    for v in suite.variants:
        technique = TECHNIQUES.get(v.technique)() if v.technique else None
        if technique is None or type(technique).preflight is Technique.preflight:
            continue
        model = next((m for m in suite.models if m.name == v.parent), None)
        if model is None:  # a variant parent's shapes exist once it is made: checked then
            continue
        if model.name not in built:
            built[model.name] = build(model).module
        technique.preflight(v.params, built[model.name], f"{suite.path} variant {v.id!r}")
