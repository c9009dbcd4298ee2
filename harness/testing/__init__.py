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

from harness.compress import CompressContext
from harness.config import ModelConfig, TrainConfig
from harness.curves import CurveRecorder
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
            models: Mapping[str, ModelConfig], train_cfg: TrainConfig | None = None) -> CompressContext:
    """What a technique receives in a run: a private copy of the trained parent
    (``parents[model]`` = (task, bundle)), an estimate-metered monitor, cached training
    encodings, the teacher's logits in their own window, no curve."""
    task, bundle = parents[model]
    encoded: dict[tuple, Any] = {}
    monitor = EnergyMonitor([EstimateBackend()])

    def encode_train(name, b, cfg):
        key = (name, cfg.max_samples)
        if key not in encoded:
            encoded[key] = b.encode(task.train.subset(cfg.max_samples))
        return encoded[key]

    def teacher(cfg):
        with monitor.creation_window("teacher_logits") as out:
            logits = predict_logits(bundle.module, encode_train(model, bundle, cfg), 128)
        return logits, out[0]

    return CompressContext(
        variant_id=f"{model}.x", model_name=model, parent=copy.deepcopy(bundle.module), parent_bundle=bundle,
        params=params, train_cfg=train_cfg or models[model].train, seed=0, task=task,
        monitor=monitor, models=models,
        build=lambda cfg: MODELS.get(cfg.family)(task, **cfg.options), encode_train=encode_train,
        teacher_logits=teacher, recorder=lambda key, module, b: CurveRecorder(monitor, key, module),
    )


def checkpoint_file(module: Any, folder: Any) -> str:
    """A safetensors state dict of ``module``, as a user would save one."""
    from safetensors.torch import save_file

    path = folder / "elsewhere.safetensors"
    save_file({k: v.contiguous() for k, v in module.state_dict().items()}, str(path))
    return str(path)


def example_params(params: Mapping[str, Any], module: Any, folder: Any) -> dict[str, Any]:
    return {k: checkpoint_file(module, folder) if v == "{checkpoint_file}" else v for k, v in params.items()}
