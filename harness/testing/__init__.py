"""Conformance checks for every registry entry, plugins included, runnable from an
installed joulebench (no checkout needed):

    python -m pytest --pyargs harness.testing            # every technique, runtime, plugin
    python -m pytest --pyargs harness.testing -k my_name # just your entry

They run on the embedded digits data (no download, CPU only, about a minute): every
entry point of every group loads; every technique whose ``Technique.example`` names a
digits model (``cnn``, ``mlp``; ``"{checkpoint_file}"`` as a value is a safetensors file
of the trained parent) makes a variant from a trained parent that is well above chance, measured in a creation window
of more than 0 J (or, made elsewhere, in none), and its cached weights reload into
``rebuild``'s structure with the same logits; every runtime available here gives the
eager module's answers. ``context`` builds the ``CompressContext`` a technique gets in a
run, for a plugin's own tests.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch

from harness.compress import CompressContext, Technique
from harness.config import ModelConfig, TrainConfig
from harness.curves import CurvePlan
from harness.evaluate import predict_logits
from harness.meters import EnergyMonitor
from harness.meters.estimate import EstimateBackend
from harness.models import MODELS

#: The parents the checks train: small, so a technique's check takes seconds.
DIGITS_MODELS = {
    "cnn": ModelConfig("cnn", "cnn", {"channels": [8, 16], "hidden": 32}, TrainConfig(epochs=3, batch_size=32, lr=3e-3)),
    "mlp": ModelConfig("mlp", "mlp", {"hidden": [16]}, TrainConfig(epochs=3, batch_size=32, lr=3e-3)),
}
def context(parents: Mapping[str, tuple[Any, Any]], model: str, params: Mapping[str, Any],
            models: Mapping[str, ModelConfig], train_cfg: TrainConfig | None = None,
            technique: Technique | None = None) -> CompressContext:
    """What ``technique`` receives in a run: a private copy of the trained parent
    (``parents[model]`` = (task, bundle)), an estimate-metered monitor, the training
    examples encoded for the variant's architecture (a fresh module of it where it is not
    the parent's), the teacher's logits in their own window where the technique asks for
    them, no curve. Without ``technique``: the parent's architecture, no teacher logits."""
    task, bundle = parents[model]
    monitor = EnergyMonitor([EstimateBackend()])
    cfg = train_cfg or models[model].train
    arch = technique.architecture(params, model) if technique is not None else model
    torch.manual_seed(0)  # as a run seeds before building a variant's fresh module
    fresh = MODELS.get(models[arch].family)(task, **models[arch].options) if arch != model else None
    train_data = (fresh or bundle).encode(task.train.subset(cfg.max_samples))
    teacher = None
    if technique is not None and technique.uses_teacher_logits(params):
        with monitor.creation_window("teacher_logits") as out:
            logits = predict_logits(bundle.module, bundle.encode(task.train.subset(cfg.max_samples)), 128)
        teacher = (logits, out[0])
    return CompressContext(
        variant_id=f"{model}.x", model_name=model, parent=copy.deepcopy(bundle.module), parent_bundle=bundle,
        params=params, train_cfg=cfg, seed=0, task=task, monitor=monitor, models=models,
        train_data=train_data, fresh=fresh, teacher_logits=teacher, curves=CurvePlan(monitor),
    )


def checkpoint_file(module: Any, folder: Any) -> str:
    """A safetensors state dict of ``module``, as a user would save one."""
    from safetensors.torch import save_file

    path = folder / "elsewhere.safetensors"
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    return str(path)


def example_params(params: Mapping[str, Any], module: Any, folder: Any) -> dict[str, Any]:
    return {k: checkpoint_file(module, folder) if v == "{checkpoint_file}" else v for k, v in params.items()}
