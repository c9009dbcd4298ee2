"""Model families: one file each, one ``@MODELS.register(name)`` builder each.

A builder takes the TaskData and its suite options and returns a ModelBundle: a module
whose ``forward(**batch)`` returns logits, and an ``encode`` that turns a split into
tensors once (pre-tokenized, so tokenization never sits inside an energy window).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from harness.registry import Registry, discover
from harness.tasks import Split


@dataclass
class Encoded:
    """A split as tensors. ``lengths`` is set for padded token sequences."""

    features: dict[str, torch.Tensor]
    labels: torch.Tensor
    lengths: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device: torch.device) -> "Encoded":
        """The same split with its features and labels on ``device``. ``lengths`` stays
        in host memory: the width of a batch is then known without waiting for a GPU."""
        if all(v.device == device for v in self.features.values()) and self.labels.device == device:
            return self
        return Encoded({k: v.to(device) for k, v in self.features.items()}, self.labels.to(device), self.lengths)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """The examples ``idx`` (host indices), on the split's device."""
        width = int(self.lengths[idx].max()) if self.lengths is not None else None
        out = {}
        for k, v in self.features.items():
            rows = v[idx.to(v.device)]
            out[k] = rows[:, :width] if width is not None else rows  # trim padding to the batch's longest
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
    #: a module trained before the run (models/given.py: api.bench): how its creation is
    #: known; the workshop takes it as made instead of training it
    given: Any = None


def module_device(module: nn.Module) -> torch.device:
    """Where a module's tensors live (the CPU for one with none, e.g. int8 packed)."""
    for t in itertools.chain(module.parameters(), module.buffers()):
        return t.device
    return torch.device("cpu")


def count_params(module: nn.Module) -> tuple[int, int]:
    """(all parameters, nonzero parameters)."""
    total = nonzero = 0
    for p in module.parameters():
        total += p.numel()
        nonzero += int(torch.count_nonzero(p.detach()))
    return total, nonzero


ModelBuilder = Callable[..., ModelBundle]
MODELS: Registry[ModelBuilder] = Registry("model family")

def imports(builder: Callable[..., Any]) -> tuple[str, ...]:
    """Modules a family's builder imports when it runs (its ``imports`` attribute, where
    it declares one): the work pass's counting process imports them at its start."""
    return tuple(getattr(builder, "imports", ()))


discover(__name__, __path__)  # every file of this package registers its entries as it loads
