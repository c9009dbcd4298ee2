"""``torch.compile``: the module compiled by TorchInductor (``mode: default`` unless the
suite names another: reduce-overhead, max-autotune, max-autotune-no-cudagraphs).

Compiling is creation work, in the variant's own energy window: the compile itself and
a warm-up that runs every batch shape the measured windows will run (each length bucket
at each measured batch size), so the first static graph and the recompile that makes
the batch and sequence axes dynamic (or the graphs of ``dynamic: true``) all fall in
it. A second pass over the same shapes must compile nothing; the count of graphs
compiled in this process is then checked around every measured window (``Runnable.
compilations``) and recorded, so a window that compiled is visible in the table.

Every compile is cold, for every seed of every variant: the compiled module is entered
through a forward of its own (a new code object, so dynamo's in-memory cache, keyed by
code objects, holds nothing for it: without that the second seed's module of the same
class reused the first seed's graphs and its "compile" cost 0.3 J against 174 J), under
a fresh, empty inductor cache directory with inductor's in-memory caches cleared and its
caches disabled. A compile that compiled no graph is refused (the variant is skipped
with the reason), never recorded as cold. What a process pays once (inductor's imports,
its compile worker pool, the first use of the C++ toolchain) is paid by ``preload``
outside any window, before the first compile; each creation window then holds one
model's compile. Compiled code is not cached by joulebench (it is not a portable file).
"""

from __future__ import annotations

import tempfile
import types
import warnings
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from harness.device import CPU, Device
from harness.errors import UserError, VariantSkipped
from harness.runtimes import RUNTIMES, DeployContext, Deployment, ModuleRunnable, Runtime

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def graphs_compiled() -> int:
    """Graphs dynamo has compiled in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class CompiledRunnable(ModuleRunnable):
    def compilations(self) -> int:
        return graphs_compiled()


class Entry(nn.Module):
    """``inner`` behind a forward whose code object is new for every instance: dynamo
    caches compiled frames per code object, so this module's compile shares nothing
    with an earlier one of the same class (another seed, another variant)."""

    _made = 0

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        Entry._made += 1
        code = Entry._forward.__code__.replace(co_name=f"forward_{Entry._made}")
        self.forward = types.MethodType(types.FunctionType(code, Entry._forward.__globals__), self)

    def _forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.inner(*args, **kwargs)


@contextmanager
def cold() -> Iterator[None]:
    """Inductor with nothing to reuse: a fresh, empty cache directory (compiled kernels
    are looked up there by source hash), its in-memory caches cleared, caches disabled."""
    import torch._inductor.config as inductor_config
    from torch._inductor.runtime.cache_dir_utils import temporary_cache_dir

    with tempfile.TemporaryDirectory(prefix="joulebench-inductor-") as tmp, temporary_cache_dir(tmp), \
            inductor_config.patch(force_disable_caches=True), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "dynamo_pgo force disabled": the point of the patch
        yield


@RUNTIMES.register("compile")
class Compile(Runtime):
    footnote = ("torch.compile (inductor); train J includes the cold compile and its warm-up over every measured "
                "batch shape.")
    examples = ("cnn",)  # BERT compiles in the SST-2 end-to-end test
    work_skip = ("not counted under compile: the counting process would recompile every graph inside valgrind "
                 "(minutes per variant under the emulator)")

    def __init__(self, mode: str = "default", dynamic: bool | None = None) -> None:
        if mode not in MODES:
            raise UserError(f"compile mode must be one of {', '.join(MODES)}, not {mode!r}")
        if dynamic not in (None, True, False):
            raise UserError(f"compile dynamic must be true, false or null (automatic), not {dynamic!r}")
        self.mode, self.dynamic = mode, dynamic

    def options(self) -> dict[str, Any]:
        return {"mode": self.mode, "dynamic": self.dynamic}

    def preload(self, device: Device = CPU) -> None:
        """Inductor's imports, its compile worker pool and a first compile of a throwaway
        module (a convolution and a matrix product): what the first compile in a process
        pays once (~16 CPU-s here)."""
        from torch._inductor.async_compile import AsyncCompile

        AsyncCompile.warm_pool()
        # sympy's simplify() imports its units lazily, the first time inductor's C++
        # codegen simplifies a symbolic size (the real model's, not a tiny one's)
        import sympy.physics.units  # noqa: F401
        tiny = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2)).eval().to(device.torch)
        try:
            with torch.inference_mode(), cold():
                run = torch.compile(Entry(tiny), mode=None if self.mode == "default" else self.mode,
                                    dynamic=self.dynamic)
                for batch in (2, 3):  # the second shape: the recompile with dynamic sizes (sympy)
                    run(torch.ones(batch, 1, 4, 4, device=device.torch))
                device.sync()
        except Exception:  # the variant's own compile reports the failure, with the reason
            pass

    def deploy(self, ctx: DeployContext, artifact: bytes | None = None) -> Deployment:
        module = ctx.module.eval()
        start = graphs_compiled()
        compiled = torch.compile(Entry(module), mode=None if self.mode == "default" else self.mode,
                                 dynamic=self.dynamic)
        run = CompiledRunnable(compiled, ctx.device.torch)
        staged = [run.stage(b) for b in ctx.samples]
        try:
            # inference_mode as in evaluation and the windows (dynamo guards on grad mode)
            with torch.inference_mode(), cold():
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
        if first == start:
            raise VariantSkipped(f"torch.compile of {ctx.variant_id} compiled no graph (dynamo reused compiled code), "
                                 "so its creation window would not hold a cold compile; not recorded")
        info = {"mode": self.mode, "dynamic": self.dynamic, "backend": "inductor",
                "graphs_compiled": first - start, "graphs_on_second_pass": again,
                "warmup_shapes": len({tuple(tuple(v.shape) for v in b.values()) for b in ctx.samples}),
                "inductor_caches": "a fresh empty cache dir, in-memory caches cleared, caches disabled (a cold compile)"}
        if again:
            ctx.log(f"  warning: {ctx.variant_id} compiled {again} more graph(s) on a second pass over the same shapes")
        return Deployment(run, info)
