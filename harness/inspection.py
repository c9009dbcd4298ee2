"""Inspecting a module, never changing it: size on disk, weights and nonzeros, sparsity,
and FLOPs (the hardware-independent cost).

FLOPs are counted by ``torch.utils.flop_counter``:
- per inference: every forward FLOP over the eval split, divided by its size (the same
  length-bucketed batches the energy windows run);
- training: 3 x forward FLOPs per training example x examples processed (the backward
  pass costs about twice the forward; Kaplan et al. 2020), plus the teacher's forward
  passes for distillation. The forward FLOPs per training example are counted on the
  batches training runs: the seeded shuffle at the training batch size, each batch
  padded to its longest example (on SST-2, ~2.7x the FLOPs of length-sorted batches).

torch's counter does not know quantized kernels (int8 linear counts 0); a technique
that says so (``flops_from_parent``) reports its parent's FLOPs: the same arithmetic at
lower precision.
"""

from __future__ import annotations

import io
import math
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from harness.models import Encoded, module_device

PRUNABLE = (nn.Linear, nn.Conv2d)


def prunable_weights(module: nn.Module) -> list[tuple[nn.Module, str]]:
    """The weights unstructured pruning ranks: every Linear and Conv2d weight."""
    return [(m, "weight") for m in module.modules() if isinstance(m, PRUNABLE)]


def measured_sparsity(module: nn.Module) -> float | None:
    """Fraction of zeros over the Linear/Conv weights; None when none are left in float
    (int8 packed modules: their zeros are not tracked)."""
    weights = [getattr(m, name) for m, name in prunable_weights(module)]
    total = sum(w.numel() for w in weights)
    if total == 0:
        return None
    return sum(int((w == 0).sum()) for w in weights) / total


def state_size(module: nn.Module) -> tuple[int, int, int]:
    """(bytes of the saved state dict, weights, nonzero weights). Counted from the state
    dict so int8-packed and half-precision weights count like any other."""
    buf = io.BytesIO()
    state = module.state_dict()
    torch.save(state, buf)
    total = nonzero = 0

    def visit(value: Any) -> None:
        nonlocal total, nonzero
        if isinstance(value, torch.Tensor):
            if value.is_quantized:
                value = value.int_repr()
            elif not value.is_floating_point():
                return  # integer buffers (position ids, counters) are not weights
            total += value.numel()
            nonzero += int(torch.count_nonzero(value))
        elif isinstance(value, (tuple, list)):
            for v in value:
                visit(v)

    for key, value in state.items():
        if not key.endswith("_packed_params.dtype"):
            visit(value)
    return buf.getbuffer().nbytes, total, nonzero


@torch.inference_mode()
def training_flops_per_example(module: nn.Module, data: Encoded, batch_size: int, seed: int,
                               max_examples: int = 512) -> float:
    """Mean forward FLOPs per example over the first training batches as ``train`` draws
    them (the seed's first-epoch permutation, ``batch_size`` examples, padded to the
    batch's longest): an unbiased sample of every epoch's batches, which are drawn alike.
    No examples (a module given with no training data): 0, which counts nothing trained."""
    if len(data) == 0:
        return 0.0
    perm = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    take = max(1, math.ceil(min(max_examples, len(data)) / batch_size)) * batch_size
    idx = perm[:take]
    module.eval()
    data = data.to(module_device(module))
    with FlopCounterMode(display=False) as counter:
        for start in range(0, len(idx), batch_size):
            module(**data.batch(idx[start:start + batch_size]))
    return counter.get_total_flops() / len(idx)


@torch.inference_mode()
def forward_flops_per_example(module: nn.Module, data: Encoded, batch_size: int = 64,
                              max_examples: int = 1024) -> float:
    """Mean forward FLOPs per example over length-bucketed batches, as the windows run
    them; a split larger than ``max_examples`` is sampled (seeded) first."""
    idx = torch.arange(len(data))
    if len(idx) > max_examples:
        idx = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:max_examples]
    if data.lengths is not None:
        idx = idx[torch.argsort(data.lengths[idx], stable=True)]
    module.eval()
    data = data.to(module_device(module))  # counted where the module runs
    with FlopCounterMode(display=False) as counter:
        for start in range(0, len(idx), batch_size):
            module(**data.batch(idx[start:start + batch_size]))
    return counter.get_total_flops() / len(idx)
