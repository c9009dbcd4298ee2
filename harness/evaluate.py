"""Accuracy on the eval split, keeping every per-example prediction.

The predictions are stored with the results so a variant can be tested against its
parent on the same examples (paired McNemar), and any accuracy can be recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from harness.models import Encoded


@dataclass(frozen=True)
class EvalResult:
    correct: int
    n: int
    predictions: list[int]

    @property
    def accuracy(self) -> float:
        return self.correct / self.n


@torch.inference_mode()
def evaluate(module: nn.Module, data: Encoded, batch_size: int) -> EvalResult:
    module.eval()
    preds = np.empty(len(data), dtype=np.int64)
    for idx in data.buckets(batch_size):
        preds[idx.numpy()] = module(**data.batch(idx)).argmax(dim=-1).numpy()
    labels = data.labels.numpy()
    return EvalResult(int((preds == labels).sum()), len(labels), preds.tolist())
