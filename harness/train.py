"""One training loop, readable top to bottom.

Every model family speaks ``module(**batch) -> logits``, so images and token sequences
share this loop. The whole loop runs inside one energy window owned by the caller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from harness.models import Encoded
from harness.config import TrainConfig


@dataclass(frozen=True)
class TrainStats:
    steps: int
    samples: int  # training examples processed, counting every epoch
    final_loss: float  # mean loss over the last epoch


def lr_lambda(cfg: TrainConfig, total_steps: int):
    warmup = int(cfg.warmup_fraction * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "linear":
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup))
        return 1.0

    return factor


#: loss(logits, batch indices) -> scalar; the default is cross-entropy on the labels.
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def train(module: nn.Module, data: Encoded, cfg: TrainConfig, seed: int, desc: str = "train",
          loss_fn: LossFn | None = None) -> TrainStats:
    n = len(data)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, total_steps))
    order = torch.Generator().manual_seed(seed)  # the data order is part of the seed
    module.train()
    step, epoch_loss = 0, 0.0
    bar = tqdm(total=total_steps, desc=desc, unit="step", leave=False, disable=None)
    for _epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=order)
        epoch_loss = 0.0
        for start in range(0, n, cfg.batch_size):
            idx = perm[start:start + cfg.batch_size]
            logits = module(**data.batch(idx))
            loss = loss_fn(logits, idx) if loss_fn else F.cross_entropy(logits, data.labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # Clipping keeps from-scratch transformers stable at the suite's learning rates.
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            opt.step()
            sched.step()
            epoch_loss += loss.item() * len(idx)
            step += 1
            bar.update(1)
        bar.set_postfix(loss=f"{epoch_loss / n:.3f}")
    bar.close()
    module.eval()
    return TrainStats(steps=step, samples=cfg.epochs * n, final_loss=epoch_loss / n)
