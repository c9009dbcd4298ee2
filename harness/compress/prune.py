"""Unstructured global magnitude pruning, then fine-tuning, then permanent masks.

The weights of every Linear and Conv layer compete in one global ranking by magnitude
(``torch.nn.utils.prune.global_unstructured``); embeddings are left dense, as in the
BERT pruning literature. The masks stay active while fine-tuning and are then made
permanent. The reported sparsity is measured afterwards, over the pruned weights.

Honesty note, carried into the table: dense kernels multiply zeros like any other
number, so unstructured sparsity saves no energy here (``sparsity_exploited: no``).
"""

from __future__ import annotations

from typing import Any, Mapping

from torch.nn.utils import prune as torch_prune

from harness.compress import TECHNIQUES, CompressContext, CompressResult, Technique, require
from harness.errors import UserError
from harness.inspection import measured_sparsity, prunable_weights
from harness.train import train


@TECHNIQUES.register("prune")
class MagnitudePrune(Technique):
    """Zeros in place: the variant keeps its parent's structure (the default rebuild)."""

    name = "prune"

    def validate(self, params: Mapping[str, Any], where: str, models: set[str] = frozenset()) -> None:
        require(params, {"sparsity"}, where)
        s = params.get("sparsity")
        if not isinstance(s, (int, float)) or isinstance(s, bool) or not 0 <= s < 1:
            raise UserError(f"sparsity in {where} must be a number in [0, 1), got {s!r}")

    def apply(self, ctx: CompressContext) -> CompressResult:
        module = ctx.parent
        data = ctx.encode_train(ctx.model_name, ctx.parent_bundle, ctx.train_cfg)
        with ctx.monitor.window(f"{ctx.variant_id}:create") as out:
            torch_prune.global_unstructured(prunable_weights(module), torch_prune.L1Unstructured,
                                            amount=float(ctx.params["sparsity"]))
            stats = train(module, data, ctx.train_cfg, ctx.seed, desc=f"finetune {ctx.variant_id}")
            for m, name in prunable_weights(module):
                torch_prune.remove(m, name)
        sparsity = measured_sparsity(module)
        return CompressResult(module, ctx.parent_bundle, {"create": out[0]}, {
            "requested_sparsity": float(ctx.params["sparsity"]),
            "sparsity": sparsity,
            "sparsity_scope": "Linear and Conv weights",
            "sparsity_exploited": "no: dense kernels multiply the zeros",
            "finetune_steps": stats.steps,
            "train_samples": stats.samples,
        })

