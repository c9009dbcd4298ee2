"""Whether each suite model fits the machine, known before the run folder exists.

Every model is built once on PyTorch's ``meta`` device (shapes, no storage) from its
options, and one training batch of the suite's size is run through it there: the
parameters (weights, gradients and Adam's two moments: 16 bytes each in fp32) and the
outputs of every leaf module (what backward keeps) are counted against the memory the
run's device has free. A model that would not fit is one line naming its size; the
builder's own checks (a from-config transformer's positions against ``max_length``)
run here too, so they also come before anything is written.
"""

from __future__ import annotations

from typing import Any

import torch

from harness.errors import UserError

#: Bytes per trained fp32 parameter: weight, gradient, and Adam's two moments.
TRAIN_BYTES_PER_PARAM = 16
#: The share of free memory a run may plan to use (the rest: the data, the process).
SHARE = 0.8


def free_bytes(device: Any) -> int | None:
    """Memory free for the run on ``device`` (a harness.device.Device): the GPU's free
    memory, or the host's MemAvailable; None where it cannot be read."""
    if device.is_cuda:
        try:
            return int(torch.cuda.mem_get_info(device.index)[0])
        except Exception:  # a fake or a driver that cannot say: no check, not a guess
            return None
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _activations(module: torch.nn.Module, batch: dict[str, torch.Tensor]) -> int | None:
    """Bytes of every leaf module's outputs for ``batch``, on the meta device (None where
    a layer cannot run there)."""
    total = [0]

    def hook(_m: Any, _i: Any, out: Any) -> None:
        for t in out if isinstance(out, (tuple, list)) else [out]:
            if isinstance(t, torch.Tensor):
                total[0] += t.numel() * t.element_size()

    leaves = [m for m in module.modules() if not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in leaves]
    try:
        module(**batch) if isinstance(batch, dict) else module(batch)
    except Exception:  # an op with no meta kernel: the parameters alone are checked
        return None
    finally:
        for h in handles:
            h.remove()
    return total[0]


def check(suite: Any, task: Any, device: Any, build: Any) -> None:
    """One line if a suite model cannot be trained in the memory ``device`` has free.
    ``build(model_cfg)`` makes a model's bundle (the registry's builder)."""
    free = free_bytes(device)
    for model in suite.models:
        with torch.device("meta"):
            try:
                bundle = build(model)
            except UserError:
                raise
            except Exception:  # a builder that cannot make its module on meta (pretrained weights): built later
                continue
        params = sum(p.numel() for p in bundle.module.parameters())
        train = model.train
        rows = task.train.subset(min(train.batch_size, len(task.train.labels)))
        enc = bundle.encode(rows)
        batch = {k: v.to("meta") for k, v in enc.features.items()}
        acts = _activations(bundle.module, batch) if len(rows.labels) else None
        need = params * TRAIN_BYTES_PER_PARAM + 3 * (acts or 0)  # forward outputs, their gradients, a margin
        if free is not None and need > SHARE * free:
            raise UserError(f"{suite.path} model {model.name!r}: {params:,} parameters"
                            + (f" and {acts / 2**30:.1f} GiB of activations per batch of {train.batch_size}"
                               if acts else "")
                            + f" need about {need / 2**30:.1f} GiB to train, over {SHARE:.0%} of the "
                            f"{free / 2**30:.1f} GiB free on {device.name}; make it smaller (options) or the batch")
