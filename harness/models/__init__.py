"""Model families: one file each, one ``@MODELS.register(name)`` builder each.

A builder takes the TaskData and its suite options and returns a ModelBundle: a module
whose ``forward(**batch)`` returns logits, and an ``encode`` that turns a split into
tensors once (pre-tokenized, so tokenization never sits inside an energy window).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from harness.registry import Registry
from harness.tasks import Split


@dataclass
class Encoded:
    """A split as tensors. ``lengths`` is set for padded token sequences."""

    features: dict[str, torch.Tensor]
    labels: torch.Tensor
    lengths: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        out = {k: v[idx] for k, v in self.features.items()}
        if self.lengths is not None:  # trim padding to the longest sequence in the batch
            width = int(self.lengths[idx].max())
            out = {k: v[:, :width] for k, v in out.items()}
        return out

    def buckets(self, batch_size: int) -> list[torch.Tensor]:
        """Index batches of similar length, so inference does not pay for padding."""
        n = len(self)
        order = torch.argsort(self.lengths, stable=True) if self.lengths is not None else torch.arange(n)
        return [order[i:i + batch_size] for i in range(0, n, batch_size)]


@dataclass
class ModelBundle:
    module: nn.Module
    encode: Callable[[Split], Encoded]
    info: dict[str, Any] = field(default_factory=dict)


def count_params(module: nn.Module) -> tuple[int, int]:
    """(all parameters, nonzero parameters)."""
    total = nonzero = 0
    for p in module.parameters():
        total += p.numel()
        nonzero += int(torch.count_nonzero(p.detach()))
    return total, nonzero


ModelBuilder = Callable[..., ModelBundle]
MODELS: Registry[ModelBuilder] = Registry("model family")

from harness.models import bert, cnn  # noqa: E402,F401
