"""Hardware-independent cost: FLOPs counted by ``torch.utils.flop_counter``.

- per inference: every forward FLOP over the eval split, divided by its size (the same
  length-bucketed batches the energy windows run);
- training: 3 x forward FLOPs per training example x examples processed (the backward
  pass costs about twice the forward; Kaplan et al. 2020), plus the teacher's forward
  passes for distillation.

torch's counter does not know quantized kernels (int8 linear counts 0), so a quantized
variant reports its parent's FLOPs: the same arithmetic at lower precision.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from harness.models import Encoded


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
    with FlopCounterMode(display=False) as counter:
        for start in range(0, len(idx), batch_size):
            module(**data.batch(idx[start:start + batch_size]))
    return counter.get_total_flops() / len(idx)
