"""Magnitude pruning, then fine-tuning, then permanent masks: unstructured, or 2:4.

- ``sparsity: s``: the weights of every Linear and Conv layer compete in one global
  ranking by magnitude (``torch.nn.utils.prune.global_unstructured``); embeddings stay
  dense, as in the BERT pruning literature. Dense kernels multiply the zeros like any
  other number, so this saves no energy (``sparsity_exploited: no``).
- ``pattern: "2:4"``: in every group of 4 consecutive input weights of a Linear layer,
  the 2 largest are kept (the semi-structured pattern of NVIDIA's sparse tensor cores).
  Only layers whose shape the 2:4 kernels accept are pruned (rows a multiple of 32,
  columns of 64; a 2-way classifier head is not). After fine-tuning, ``finalize``
  converts those weights to torch's semi-structured tensors (cuSPARSELt for half
  precision, CUTLASS for fp32 weights, which cuSPARSELt refuses; one forward through
  each layer checks the kernel runs), so the sparsity is really exploited. That needs a CUDA GPU of compute capability 8.0 or
  newer; anywhere else the variant is a one-line skip, decided before any training.
  ``dtype: bf16`` or ``fp16`` runs the converted model in half precision (cuSPARSELt);
  fp32 (the default) has kernels on compute capability 8.x only (CUTLASS), so on a
  Hopper GPU an fp32 2:4 variant is a one-line skip that names the fix.

The masks stay active while fine-tuning and are then made permanent. The artifact cache
keeps the dense masked weights; the conversion is redone (in milliseconds) on load.
"""

from __future__ import annotations

import copy
from typing import Any, Literal, Mapping

import torch
from torch import nn
from torch.nn.utils import prune as torch_prune

from harness.compress import TECHNIQUES, CompressContext, CompressResult, NoParams, Technique, VariantSkipped
from harness.compress.quantize import CastInputs
from harness.errors import UserError
from harness.registry import between
from harness.inspection import measured_sparsity, prunable_weights
from harness.train import train

PATTERNS = ("2:4",)
SPARSE_DTYPES = ("fp32", "bf16", "fp16")
#: The smallest weight tile every 2:4 backend accepts (CUTLASS fp16/bf16: 32 x 64).
TILE_ROWS, TILE_COLS = 32, 64


def semi_structured_unsupported(device: Any, dtype: str = "fp32") -> str | None:
    """None where 2:4 kernels can run on ``device`` (a harness.device.Device) in ``dtype``, else why not."""
    if not device.is_cuda:
        return f"2:4 semi-structured sparsity needs an NVIDIA GPU (compute capability 8.0+); this run is on {device.name}"
    if device.capability is None or tuple(device.capability) < (8, 0):
        return (f"2:4 semi-structured sparsity needs compute capability 8.0+ (Ampere or newer); "
                f"{device.model} is {device.capability}")
    if dtype == "fp32" and tuple(device.capability) >= (9, 0):
        # seen on an H100: cuSPARSELt refuses fp32 and torch builds CUTLASS's 2:4 kernels for 8.x only
        return (f"2:4 in fp32 needs CUTLASS's kernels, which torch builds for compute capability 8.x only; "
                f"{device.model} is {tuple(device.capability)}: give the variant dtype: bf16 or fp16 (cuSPARSELt)")
    return None


def two_of_four_layers(module: nn.Module) -> list[nn.Linear]:
    """The Linear layers the 2:4 kernels accept."""
    return [m for m in module.modules() if isinstance(m, nn.Linear)
            and m.out_features % TILE_ROWS == 0 and m.in_features % TILE_COLS == 0]


def two_of_four_mask(weight: torch.Tensor) -> torch.Tensor:
    """1 for the 2 largest |w| of every 4 consecutive inputs of each output row."""
    rows, cols = weight.shape
    groups = weight.detach().abs().reshape(rows, cols // 4, 4)
    keep = groups.topk(2, dim=-1).indices
    mask = torch.zeros_like(groups).scatter_(-1, keep, 1.0)
    return mask.reshape(rows, cols)


def cusparselt_available() -> bool:
    return bool(getattr(torch.backends, "cusparselt", None) and torch.backends.cusparselt.is_available())


def sparse_backend(dtype: torch.dtype, cusparselt: bool) -> type | None:
    """The 2:4 kernels for weights of ``dtype``: cuSPARSELt (torch's default) where it takes
    the dtype, else CUTLASS (the only one with fp32, through TF32 sparse tensor cores)."""
    from torch.sparse import SparseSemiStructuredTensorCUSPARSELT as Lt, SparseSemiStructuredTensorCUTLASS as Cutlass

    if cusparselt and dtype in Lt._DTYPE_SHAPE_CONSTRAINTS:
        return Lt
    return Cutlass if dtype in Cutlass._DTYPE_SHAPE_CONSTRAINTS else None


@TECHNIQUES.register("prune")
class MagnitudePrune(Technique):
    """Zeros in place: the variant keeps its parent's structure (the default rebuild)."""

    example = ("cnn", {"sparsity": 0.8})  # the conformance checks' (harness.testing)

    class Params(NoParams):
        sparsity: between(0, 1, open_high=True) | None = None  # unstructured, the fraction of weights zeroed
        pattern: Literal[PATTERNS] | None = None  # "2:4" (quote it in YAML)
        dtype: Literal[SPARSE_DTYPES] = "fp32"  # 2:4 only: the precision its kernels run in

    def check(self, params: Mapping[str, Any], where: str, models: set[str]) -> None:
        if ("sparsity" in params) == ("pattern" in params):
            raise UserError(f"prune in {where} takes sparsity: s (unstructured) or pattern: \"2:4\", exactly one")
        if "dtype" in params and "pattern" not in params:
            raise UserError(f"prune in {where}: dtype applies to pattern \"2:4\" only; cast an unstructured "
                            "prune with a quantize child (dtype: bf16)")

    def counts_flops_on_parent(self, params: Mapping[str, Any]) -> bool:
        return "pattern" in params  # the parent's dense FLOPs; the 2:4 kernels skip half the multiplies

    def apply(self, ctx: CompressContext) -> CompressResult:
        pattern = ctx.params.get("pattern")
        if pattern:
            why = semi_structured_unsupported(ctx.device, ctx.params.get("dtype", "fp32"))
            if why:
                raise VariantSkipped(why)
        module = ctx.parent
        data = ctx.train_data
        recorder = ctx.curve(f"{ctx.variant_id}:create", module)
        with recorder.window() as out:
            if pattern:
                targets = [(m, "weight") for m in two_of_four_layers(module)]
                for m, name in targets:
                    torch_prune.custom_from_mask(m, name, two_of_four_mask(m.weight))
            else:
                targets = prunable_weights(module)
                torch_prune.global_unstructured(targets, torch_prune.L1Unstructured,
                                                amount=float(ctx.params["sparsity"]))
            stats = train(module, data, ctx.train_cfg, ctx.seed, desc=f"finetune {ctx.variant_id}",
                          checkpoint=recorder.checkpoint)
            for m, name in targets:
                torch_prune.remove(m, name)
        info: dict[str, Any] = {
            "sparsity": measured_sparsity(module),
            "sparsity_scope": "Linear and Conv weights",
            "finetune_steps": stats.steps,
            "train_samples": stats.samples,
        }
        if pattern:
            info.update(pattern=pattern, dtype=ctx.params.get("dtype", "fp32"), layers_2of4=len(targets),
                        sparsity_exploited="pending: converted to 2:4 kernels when loaded",
                        size_note="size_bytes is the dense masked checkpoint (what the cache stores); 2:4 storage "
                                  "holds half the values of the converted layers plus 2-bit metadata")
        else:
            info.update(requested_sparsity=float(ctx.params["sparsity"]),
                        sparsity_exploited="no: dense kernels multiply the zeros")
        return CompressResult(module, ctx.parent_bundle, {"create": out[0]}, info, recorder.curve())

    def finalize(self, module: nn.Module, params: Mapping[str, Any], info: dict[str, Any], device: Any) -> nn.Module:
        """2:4: hand the pruned Linear weights to the semi-structured sparse kernels."""
        if "pattern" not in params:
            return module
        dtype = params.get("dtype", "fp32")
        why = semi_structured_unsupported(device, dtype)
        if why:
            raise VariantSkipped(why)
        module = copy.deepcopy(module)  # the created module stays dense: children derive from it
        if dtype != "fp32":  # the whole model in half precision, float32 batches in and logits out
            module = CastInputs(module, torch.bfloat16 if dtype == "bf16" else torch.float16)
        layers = two_of_four_layers(module)
        backends, cusparselt = set(), cusparselt_available()
        try:
            for m in layers:
                w = m.weight.detach()
                backend = sparse_backend(w.dtype, cusparselt)
                if backend is None:
                    raise ValueError(f"no 2:4 kernel takes {w.dtype} weights")
                m.weight = nn.Parameter(backend.from_dense(w), requires_grad=False)
                m(torch.zeros(1, m.in_features, dtype=w.dtype, device=w.device))  # the kernel runs, or says why
                backends.add(f"{backend.BACKEND} {str(w.dtype).removeprefix('torch.')}")
        except (RuntimeError, ValueError, NotImplementedError) as exc:
            raise VariantSkipped(f"2:4 kernels refused the weights on {device.model} "
                                 f"({str(exc).splitlines()[0][:160]})") from None
        info["sparsity_exploited"] = (f"yes: {len(layers)} Linear layers run 2:4 semi-structured kernels "
                                      f"({', '.join(sorted(backends))})")
        return module
