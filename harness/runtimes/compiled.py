"""``torch.compile``: the module compiled by TorchInductor (``mode: default`` unless the
suite names another: reduce-overhead, max-autotune, max-autotune-no-cudagraphs).

Compiling is creation work, in the variant's own energy window: the compile itself and
a warm-up that runs every batch shape the measured windows will run (each length bucket
at each measured batch size), so the first static graph and the recompile that makes
the batch and sequence axes dynamic (or the graphs of ``dynamic: true``) all fall in
it. A second pass over the same shapes must compile nothing; the count of graphs
compiled in this process is then checked around every measured window (``Runnable.
compilations``) and recorded, so a window that compiled is visible in the table.

Inductor's on-disk caches are disabled while compiling: every run pays a cold compile,
the cost a fresh deployment pays, and the creation window means the same thing on every
run. Compiled code is not cached by joulebench (it is not a portable file).
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from harness.compress import VariantSkipped
from harness.errors import UserError
from harness.runtimes import RUNTIMES, DeployContext, Deployment, ModuleRunnable, Runtime

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def graphs_compiled() -> int:
    """Graphs dynamo has compiled in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class CompiledRunnable(ModuleRunnable):
    def compilations(self) -> int:
        return graphs_compiled()


@RUNTIMES.register("compile")
class Compile(Runtime):
    name = "compile"

    def __init__(self, mode: str = "default", dynamic: bool | None = None) -> None:
        if mode not in MODES:
            raise UserError(f"compile mode must be one of {', '.join(MODES)}, not {mode!r}")
        if dynamic not in (None, True, False):
            raise UserError(f"compile dynamic must be true, false or null (automatic), not {dynamic!r}")
        self.mode, self.dynamic = mode, dynamic

    def options(self) -> dict[str, Any]:
        return {"mode": self.mode, "dynamic": self.dynamic}

    def deploy(self, ctx: DeployContext, artifact: bytes | None = None) -> Deployment:
        import torch._inductor.config as inductor_config

        module = ctx.module.eval()
        start = graphs_compiled()
        compiled = torch.compile(module, mode=None if self.mode == "default" else self.mode, dynamic=self.dynamic)
        run = CompiledRunnable(compiled, ctx.device.torch)
        staged = [run.stage(b) for b in ctx.samples]
        try:
            # inference_mode as in evaluation and the windows (dynamo guards on grad mode)
            with torch.inference_mode(), inductor_config.patch(force_disable_caches=True), \
                    warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "dynamo_pgo force disabled": the point of the patch
                for batch in staged:
                    run(batch)
                ctx.device.sync()
                first = graphs_compiled()
                for batch in staged:  # the same shapes again: must compile nothing
                    run(batch)
                ctx.device.sync()
        except Exception as exc:  # inductor needs a C++ compiler on the CPU, Triton on a GPU, ...
            text = str(exc).strip().splitlines()
            raise VariantSkipped(f"torch.compile failed on {ctx.variant_id}: {type(exc).__name__}"
                                 f"{': ' + text[0][:160] if text else ''}") from None
        again = graphs_compiled() - first
        info = {"mode": self.mode, "dynamic": self.dynamic, "backend": "inductor",
                "graphs_compiled": first - start, "graphs_on_second_pass": again,
                "warmup_shapes": len({tuple(tuple(v.shape) for v in b.values()) for b in ctx.samples}),
                "inductor_caches": "disabled while compiling (a cold compile)"}
        if again:
            ctx.log(f"  warning: {ctx.variant_id} compiled {again} more graph(s) on a second pass over the same shapes")
        return Deployment(run, info)
