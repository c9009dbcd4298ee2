"""One training loop, readable top to bottom.

Every model family speaks ``module(**batch) -> logits``, so images and token sequences
share this loop. The whole loop runs inside one energy window owned by the caller.

It runs where the module is: the caller puts the module on the run's device, and the
training tensors follow it there once, before the first step (so no host-to-device copy
sits in the loop). ``precision`` bf16/fp16 runs the forward and loss under autocast,
with a GradScaler for fp16; weights and optimizer state stay fp32. The running loss is
summed on the device, so the loop never waits for the GPU between steps.

``checkpoint(step, examples_seen)`` (a training curve's recorder, curves.py) is called
every ``cfg.checkpoint_every`` steps and after the last step; it evaluates on the
validation split in its own window and must leave the module as it found it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from harness.progress import bars

from harness.config import TrainConfig
from harness.models import Encoded, module_device

AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}


def unsupported_precision(precision: str, device: torch.device) -> str | None:
    """None if ``precision`` can train on ``device``, else why not (in one line)."""
    if precision == "fp16" and device.type != "cuda":
        return ("train.precision fp16 needs a CUDA device (fp16 autocast and GradScaler); use bf16 or fp32 on the "
                "CPU, or run with --device cuda")
    return None


@dataclass(frozen=True)
class TrainStats:
    steps: int
    samples: int  # training examples processed, counting every epoch
    final_loss: float  # mean loss over the last epoch


def preload() -> None:
    """One AdamW step on a 2x2 Linear, before any window: the first optimizer step of a
    process imports what it needs (the profiler hooks, dynamo: ~2.7 CPU-s here) once,
    and that must not be inside the first training window."""
    import torch._dynamo  # noqa: F401

    tiny = nn.Linear(2, 2)
    opt = torch.optim.AdamW(tiny.parameters(), lr=1e-3)
    F.cross_entropy(tiny(torch.ones(2, 2)), torch.zeros(2, dtype=torch.long)).backward()
    torch.nn.utils.clip_grad_norm_(tiny.parameters(), 1.0)
    opt.step()


def lr_lambda(cfg: TrainConfig, total_steps: int):
    warmup = int(cfg.warmup_fraction * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "linear":
            return max(0.0, (total_steps - step) / max(1, total_steps - warmup))
        return 1.0

    return factor


#: loss(logits, batch indices on the module's device) -> scalar; the default is
#: cross-entropy on the labels.
LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def train(module: nn.Module, data: Encoded, cfg: TrainConfig, seed: int, desc: str = "train",
          loss_fn: LossFn | None = None, checkpoint: Callable[[int, int], None] | None = None) -> TrainStats:
    device = module_device(module)
    why = unsupported_precision(cfg.precision, device)
    if why:
        raise ValueError(why)  # the runner checks this before any window opens
    data = data.to(device)
    n = len(data)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = cfg.epochs * steps_per_epoch
    every = cfg.checkpoint_every(steps_per_epoch) if checkpoint else 0
    opt = torch.optim.AdamW(module.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, total_steps))
    amp = AUTOCAST.get(cfg.precision)
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
    order = torch.Generator().manual_seed(seed)  # the data order is part of the seed (drawn on the CPU)
    module.train()
    step, seen, epoch_loss = 0, 0, torch.zeros((), dtype=torch.float64, device=device)
    bar = tqdm(total=total_steps, desc=desc, unit="step", leave=False, disable=bars())
    for _epoch in range(cfg.epochs):
        perm = torch.randperm(n, generator=order)
        epoch_loss = torch.zeros((), dtype=torch.float64, device=device)
        for start in range(0, n, cfg.batch_size):
            idx = perm[start:start + cfg.batch_size]
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                logits = module(**data.batch(idx))
                idx = idx.to(device)
                loss = loss_fn(logits, idx) if loss_fn else F.cross_entropy(logits, data.labels[idx])
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)  # clip the true gradients (a no-op unless fp16)
            # Clipping keeps from-scratch transformers stable at the suite's learning rates.
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            scaler.step(opt)
            scaler.update()
            sched.step()
            epoch_loss += loss.detach().double() * len(idx)
            step += 1
            seen += len(idx)
            bar.update(1)
            if checkpoint and (step == total_steps or (every and step % every == 0)):
                checkpoint(step, seen)
        bar.set_postfix(loss=f"{epoch_loss.item() / n:.3f}")
    bar.close()
    module.eval()
    return TrainStats(steps=step, samples=cfg.epochs * n, final_loss=epoch_loss.item() / n)
