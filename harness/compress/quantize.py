"""Quantization: int8 dynamic (Linear layers, CPU), bf16 (CPU and GPU), fp16 (GPU only).

Why ``torch.ao.quantization.quantize_dynamic`` although torch marks it deprecated in
favour of torchao: on the installed torch (2.13, CPU) it is the only eager-mode path
with a fused int8 CPU kernel (fbgemm/x86). Measured here on a 384->1536->384 MLP,
batch 2,560: fp32 ~80 ms, torch.ao dynamic int8 ~44 ms, torchao 0.18
``Int8DynamicActivationInt8WeightConfig`` ~320 ms (no fused CPU kernel without
torch.compile). An energy benchmark must measure the path users would deploy, so we
keep torch.ao while it exists and fall back to torchao's ``quantize_`` only when it is
gone; the record says which backend ran.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal, Mapping

import torch
from torch import nn

from harness.compress import TECHNIQUES, CompressContext, CompressResult, NoParams, Technique, VariantSkipped
from harness.errors import UserError
from harness.registry import between
from harness.models import module_device

DTYPES = ("int8", "bf16", "fp16")


class CastInputs(nn.Module):
    """Runs a half-precision module on float32 batches and hands back float32 logits."""

    def __init__(self, module: nn.Module, dtype: torch.dtype) -> None:
        super().__init__()
        self.inner = module.to(dtype)
        self.dtype = dtype

    def forward(self, **batch: torch.Tensor) -> torch.Tensor:
        cast = {k: v.to(self.dtype) if v.is_floating_point() else v for k, v in batch.items()}
        return self.inner(**cast).float()


def int8_dynamic(module: nn.Module) -> tuple[nn.Module, str]:
    try:
        from torch.ao.quantization import quantize_dynamic
    except ImportError:
        quantize_dynamic = None
    if quantize_dynamic is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation notice; the choice is explained above
            return quantize_dynamic(module, {nn.Linear}, dtype=torch.qint8), "torch.ao.quantization.quantize_dynamic"
    try:
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_
    except ImportError:
        raise VariantSkipped("int8 dynamic needs torch.ao.quantization (removed from this torch) or torchao; "
                             "pip install torchao") from None
    quantize_(module, Int8DynamicActivationInt8WeightConfig())
    return module, "torchao.quantize_(Int8DynamicActivationInt8WeightConfig)"


def supports(dtype: str, device: str) -> str | None:
    """None if ``dtype`` can run on ``device``, else the reason it cannot."""
    if dtype == "fp16" and device == "cpu":
        return "fp16 inference needs a CUDA GPU (CPU fp16 matmuls are emulated and slower than fp32)"
    if dtype == "int8" and device != "cpu":
        return ("int8 on a GPU: torch.ao dynamic quantization is CPU-only, and torchao's GPU int8 path has not been "
                "measured on a GPU by joulebench yet, so it is not offered")
    return None


@TECHNIQUES.register("quantize")
class Quantize(Technique):
    example = ("cnn", {"dtype": "int8"})  # the conformance checks' (harness.testing)
    cacheable = False  # seconds to redo; int8 packed modules cannot be rebuilt from weights
    flops_from_parent = True  # torch's counter does not see quantized kernels

    class Params(NoParams):
        dtype: Literal[DTYPES]

    def trains(self, params: Mapping[str, Any]) -> bool:
        return False

    def same_under_every_seed(self, params: Mapping[str, Any], parent_is: bool) -> bool:
        return parent_is  # a cast or a dynamic quantization of the weights: nothing seeded

    def runtime_request(self, params: Mapping[str, Any]) -> str | None:
        return "int8_dynamic" if params.get("dtype") == "int8" else None

    def preload(self, params: Mapping[str, Any]) -> None:
        """torch.ao.quantization's imports and a first int8 conversion (the quantized
        engine's set-up): not inside the first seed's creation window."""
        if params.get("dtype") == "int8":
            try:
                int8_dynamic(nn.Sequential(nn.Linear(2, 2)).eval())
            except VariantSkipped:
                pass

    def apply(self, ctx: CompressContext) -> CompressResult:
        dtype = ctx.params["dtype"]
        reason = supports(dtype, module_device(ctx.parent).type)
        if reason:
            raise VariantSkipped(reason)
        info: dict[str, Any] = {"dtype": dtype, "train_samples": 0}
        ctx.parent.eval()
        with ctx.monitor.creation_window(f"{ctx.variant_id}:create") as out:
            if dtype == "int8":
                module, info["backend"] = int8_dynamic(ctx.parent)
            else:
                module = CastInputs(ctx.parent, torch.bfloat16 if dtype == "bf16" else torch.float16)
                info["backend"] = f"module.to(torch.{module.dtype})"
        return CompressResult(module, ctx.parent_bundle, {"create": out[0]}, info)
