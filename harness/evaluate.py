"""Accuracy on the eval split, keeping every per-example prediction.

The predictions are stored with the results so a variant can be tested against its
parent on the same examples (paired McNemar), and any accuracy can be recomputed.
A variant is evaluated as it runs: under its runtime (an exported ONNX graph, int8
kernels, compiled code), since those change predictions.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.errors import VariantSkipped
from harness.models import Encoded
from harness.runtimes import Runnable, as_runnable, check_logits


@dataclass(frozen=True)
class EvalResult:
    correct: int
    n: int
    predictions: list[int]

    @property
    def accuracy(self) -> float:
        return self.correct / self.n


@torch.inference_mode()
def predict_logits(model: nn.Module | Runnable, data: Encoded, batch_size: int,
                   classes: int | None = None) -> torch.Tensor:
    """Logits for every example, in the split's own order (length buckets undone), in
    host memory; computed by the runnable (a module: eagerly, where it is). Every batch's
    outputs are checked (``check_logits``): VariantSkipped names what is wrong."""
    run = as_runnable(model)
    out: torch.Tensor | None = None
    for idx in data.buckets(batch_size):
        logits = run.logits(run(run.stage(data.batch(idx))))
        why = check_logits(logits, len(idx), classes)
        if why:
            raise VariantSkipped(why)
        if out is None:
            out = torch.empty(len(data), logits.shape[-1])
        out[idx] = logits
    assert out is not None
    return out


def evaluate(model: nn.Module | Runnable, data: Encoded, batch_size: int, classes: int | None = None) -> EvalResult:
    preds = predict_logits(model, data, batch_size, classes).argmax(dim=-1).numpy()
    labels = data.labels.cpu().numpy()
    return EvalResult(int((preds == labels).sum()), len(labels), preds.tolist())
