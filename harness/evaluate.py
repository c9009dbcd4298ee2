"""Accuracy on the eval split, keeping every per-example prediction.

The predictions are stored with the results so a variant can be tested against its
parent on the same examples (paired McNemar), and any accuracy can be recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from harness.models import Encoded, module_device


@dataclass(frozen=True)
class EvalResult:
    correct: int
    n: int
    predictions: list[int]

    @property
    def accuracy(self) -> float:
        return self.correct / self.n


@torch.inference_mode()
def predict_logits(module: nn.Module, data: Encoded, batch_size: int) -> torch.Tensor:
    """Logits for every example, in the split's own order (length buckets undone), in
    host memory; computed where the module is."""
    module.eval()
    data = data.to(module_device(module))
    out: torch.Tensor | None = None
    for idx in data.buckets(batch_size):
        logits = module(**data.batch(idx)).float().cpu()
        if out is None:
            out = torch.empty(len(data), logits.shape[-1])
        out[idx] = logits
    assert out is not None
    return out


def evaluate(module: nn.Module, data: Encoded, batch_size: int) -> EvalResult:
    preds = predict_logits(module, data, batch_size).argmax(dim=-1).numpy()
    labels = data.labels.cpu().numpy()
    return EvalResult(int((preds == labels).sum()), len(labels), preds.tolist())
