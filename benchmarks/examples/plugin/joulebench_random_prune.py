"""A joulebench technique from outside joulebench: random unstructured pruning.

The control a magnitude-pruning result should beat: the same share of Linear and Conv
weights zeroed, chosen at random (seeded by the run's seed) instead of by magnitude,
then the same fine-tuning under the variant's train budget. Installed with pip, it is
found through its entry point (``joulebench.techniques``: ``random_prune``); nothing in
joulebench names it. It uses joulebench's public names only (``harness.api.__all__``).

    variants:
      - {id: cnn.random50, parent: cnn, technique: random_prune, params: {sparsity: 0.5}}
"""

from __future__ import annotations

from typing import Any

import torch
from torch.nn.utils import prune as torch_prune

from harness.api import (CompressContext, CompressResult, NoParams, Technique, between, measured_sparsity,
                         prunable_weights, train)


class RandomPrune(Technique):
    """Zeros in place: the parent's structure, so the default rebuild loads cached weights."""

    example = ("cnn", {"sparsity": 0.5})  # what joulebench's conformance test builds it with

    class Params(NoParams):
        sparsity: between(0, 1, open_high=True)  # the fraction of weights zeroed, at random

    def apply(self, ctx: CompressContext) -> CompressResult:
        module = ctx.parent
        data = ctx.train_data
        recorder = ctx.curve(f"{ctx.variant_id}:create", module)
        with recorder.window() as out:
            torch.manual_seed(ctx.seed)
            targets = prunable_weights(module)
            torch_prune.global_unstructured(targets, torch_prune.RandomUnstructured,
                                            amount=float(ctx.params["sparsity"]))
            stats = train(module, data, ctx.train_cfg, ctx.seed, desc=f"finetune {ctx.variant_id}",
                          checkpoint=recorder.checkpoint)
            for m, name in targets:
                torch_prune.remove(m, name)
        info: dict[str, Any] = {"sparsity": measured_sparsity(module), "requested_sparsity": ctx.params["sparsity"],
                                "sparsity_scope": "Linear and Conv weights, chosen at random",
                                "sparsity_exploited": "no: dense kernels multiply the zeros",
                                "finetune_steps": stats.steps, "train_samples": stats.samples}
        return CompressResult(module, ctx.parent_bundle, {"create": out[0]}, info, recorder.curve())
