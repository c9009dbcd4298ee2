"""ONNX Runtime: the module exported with ``torch.onnx.export`` (the dynamo exporter,
batch and sequence axes dynamic) and run by an ``InferenceSession`` on the CPU
execution provider, with as many intra-op threads as the run's torch threads.

``quantize`` int8 under this runtime is ONNX Runtime's own dynamic quantization
(``onnxruntime.quantization.quantize_dynamic``: int8 weights, activations quantized to
uint8 per batch at run time) of the exported parent's matrix products: the path a CPU
deployment takes, with its own int8 kernels.

The exported (and quantized) ``.onnx`` file is the artifact: cached, keyed by the
module's artifact key, the opset, the onnx/onnxruntime/torch versions and the options;
its size is the variant's size on disk. An ONNX file is a protobuf graph: loading one
runs no Python. The session is created from the file's bytes each run.

With ``path: model.onnx`` the variant is an ONNX file made outside joulebench (by plain
``torch.onnx.export`` or any other exporter): nothing is exported, its graph is run and
evaluated the same way on the parent's encoded inputs (every graph input must be one of
them), its parameters are counted from its initializers, and its creation energy is
unknown or the reported ``creation_J`` (outside.py). At suite load the file must parse
as ONNX and be self-contained, the same external-data refusal as the cache's.

Needs the ``onnx`` extra (``pip install joulebench[onnx]``); without it a variant that
asks for this runtime is a one-line skip. ONNX Runtime's GPU execution providers are
not wired in (inputs would have to be bound on the device, see IOBinding), so a GPU
run skips these variants in one line too.
"""

from __future__ import annotations


import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from harness import outside
from harness.device import CPU, Device
from harness.errors import UserError, VariantSkipped
from harness.registry import between
from harness.runtimes import RUNTIMES, DeployContext, Deployment, Runtime, check_logits
from harness.runtimes._onnx import (FOREIGN_TIMEOUT_S, INT8_OPS, NOT_ONNX, OPTIMIZATION, SessionRunnable, _first_line,
                                    _quiet, described, external_data, missing, session, without_provenance)

@RUNTIMES.register("onnxruntime")
class OnnxRuntime(Runtime):
    footnote = ("the module exported to ONNX (or the .onnx file given by path) and run on the CPU execution "
                "provider; int8 there is onnxruntime's quantize_dynamic; size = the .onnx file; FLOPs are counted on "
                "the PyTorch module that was exported.")
    examples = ("cnn", "bert")
    performs = frozenset({"int8_dynamic"})
    cacheable = True
    flops_note = "counted by torch on the PyTorch module that was exported (ONNX Runtime's kernels are not seen)"
    imports = ("onnx", "onnxruntime")

    @classmethod
    def noted(cls, infos: list[dict[str, Any]]) -> str:
        """The footnote, and whether the rows' sessions stopped spinning after each run (their
        records say: ``spinning``; records made before that setting have no such key)."""
        spun = sum(1 for info in infos if "spinning" not in info)
        said = (f"{spun} of {len(infos)} such row(s) ran before its sessions stopped spinning after each run: the "
                "window after one of them may hold its idle workers' spin" if spun else
                "its worker threads stop spinning after each run, so no later window is charged their spin")
        return f"{cls.footnote.rstrip('.')}; {said}."

    def __init__(self, opset: int = 18, optimization: str = "all", per_channel: bool = False,
                 path: str | None = None, creation_J: between(0, 1e15, open_low=True) | None = None) -> None:
        if not isinstance(opset, int) or isinstance(opset, bool) or not 13 <= opset <= 23:
            raise UserError(f"onnxruntime opset must be an integer from 13 to 23, not {opset!r}")
        if optimization not in OPTIMIZATION:
            raise UserError(f"onnxruntime optimization must be one of {', '.join(OPTIMIZATION)}, not {optimization!r}")
        if not isinstance(per_channel, bool):
            raise UserError(f"onnxruntime per_channel must be true or false, not {per_channel!r}")
        if path is not None and (not isinstance(path, str) or not path):
            raise UserError(f"onnxruntime path must be the path of an .onnx file, not {path!r}")
        if creation_J is not None and path is None:
            raise UserError("onnxruntime creation_J is the reported creation energy of a file given by path; "
                            "add path: or drop creation_J")
        self.opset, self.optimization, self.per_channel = opset, optimization, per_channel
        self.path, self.creation_J = path, creation_J
        # a given file is not exported here: nothing to cache (its digest identifies it)
        self.cacheable = path is None

    def options(self) -> dict[str, Any]:
        given = {"path": self.path, **({"creation_J": self.creation_J} if self.creation_J is not None else {})}
        return {"opset": self.opset, "optimization": self.optimization, "per_channel": self.per_channel,
                **(given if self.path is not None else {})}

    def work_skip_on(self, task_kind: str) -> str | None:
        if task_kind == "text":
            return ("not counted under onnxruntime on a text task: its kernels (MLAS) have no instruction-set switch "
                    "and crawl under valgrind (with two such BERT-tiny rows on the default 4-batch sample the pass "
                    "took 280 s, one row 105 s of counting: results/reference/work/ort_text_probe.txt)")
        return self.work_skip

    def validate(self, where: str) -> None:
        """A given file: it exists, is no pickle, and (where onnx is installed; without
        it the row is a one-line skip) parses as a self-contained ONNX model."""
        if self.path is None:
            return
        file = outside.existing(self.path, where, "ONNX file")
        if not file.is_file():
            raise UserError(f"{where}: {self.path} is not a file; give an .onnx file")
        if missing():
            outside.refuse_pickle(file, where)
            return
        why = external_data(file.read_bytes())
        if why and why.startswith(NOT_ONNX):
            outside.refuse_pickle(file, where)  # named for what it is, where it is one
        if why and why.startswith(NOT_ONNX):
            raise UserError(f"{where}: {self.path} is {why}; give a file written by torch.onnx.export")
        if why:
            raise UserError(f"{where}: refusing {self.path}: {why} (onnxruntime would open that path); export "
                            "with torch.onnx.export(..., external_data=False) (its default writes the weights beside "
                            "the graph) or merge them: onnx.save_model(onnx.load(path), path, "
                            "save_as_external_data=False)")

    def preflight(self, inputs: list[str], where: str, samples: list[dict[str, torch.Tensor]] | None = None,
                  classes: int | None = None) -> None:
        """A given file, before the run folder exists: its graph inputs (initializers
        aside) are inputs the encoder gives, no input axis is fixed where the run's
        batches vary (a static batch of 64 dies on the last, shorter batch), and the
        loaded session, run on a batch of every size the run uses (``samples``) within
        FOREIGN_TIMEOUT_S each, returns finite logits of shape [batch, classes]."""
        if self.path is None or missing():
            return
        import onnx

        artifact = Path(self.path).expanduser().read_bytes()
        graph = onnx.load_model_from_string(artifact).graph
        weights = {t.name for t in graph.initializer}
        feeds = [i for i in graph.input if i.name not in weights]
        unknown = [i.name for i in feeds if i.name not in inputs]
        if unknown:
            raise UserError(f"{where}: the ONNX file {self.path} takes input {unknown[0]!r}, which the parent's "
                            f"encoder does not give (it gives {', '.join(inputs)}); export it with those input names")
        for i in feeds:
            for axis, dim in enumerate(i.type.tensor_type.shape.dim):
                sizes = {tuple(s[i.name].shape)[axis] for s in samples or [] if i.name in s and s[i.name].ndim > axis}
                if dim.HasField("dim_value") and sizes - {dim.dim_value}:
                    raise UserError(f"{where}: the ONNX file {self.path} fixes axis {axis} of input {i.name!r} to "
                                    f"{dim.dim_value}, but this run feeds it {sorted(sizes)[:4]} there (batch sizes and "
                                    "the last, shorter batch; token lengths); export it with that axis dynamic "
                                    "(torch.onnx.export(..., dynamic_shapes=...))")
        if not samples:
            return
        sess = session(artifact, 1, self.optimization)
        runnable = SessionRunnable(sess)
        for sample in samples:
            rows = next(iter(sample.values())).shape[0]
            try:
                out = runnable(runnable.stage(sample), timeout_s=FOREIGN_TIMEOUT_S)
                why = check_logits(runnable.logits(out), rows, classes, f"the ONNX file {self.path}")
            except TimeoutError:
                why = (f"the ONNX file {self.path} ran a batch of {rows} for over {FOREIGN_TIMEOUT_S:g} s (a loop "
                       "that does not end?) and was stopped")
            except Exception as exc:  # onnxruntime raises its own types for a wrong rank, dtype or shape
                why = f"the ONNX file {self.path} failed on a batch of {rows}: {_first_line(exc)}"
            if why:
                raise UserError(f"{where}: {why}; give a model exported from the parent's architecture")

    def given(self) -> outside.MadeElsewhere | None:
        if self.path is None:
            return None
        return outside.MadeElsewhere(self.path, outside.sha256(Path(self.path).expanduser()),
                                     outside.reported(self.creation_J))

    def unavailable(self, device: Device) -> str | None:
        why = missing()
        if why:
            return why
        if device.type != "cpu":
            return ("onnxruntime on a GPU is not measured by joulebench yet (CPU execution provider only); "
                    "run the suite with --device cpu for these rows")
        return None

    def preload(self, device: Device = CPU) -> None:
        """The exporter's, onnxscript's and onnxruntime's imports and a throwaway export,
        quantization and session of a 2x2 Linear: the first export in a process paid
        ~15 J of one-time work inside its window (25.5 J against 9.9 and 9.4 J)."""
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxruntime.quantization  # noqa: F401
        import onnxscript  # noqa: F401
        import torch.onnx  # noqa: F401

        import sympy.sets.setexpr  # noqa: F401  symbolic sizes of a dynamic sequence axis import it lazily

        class Tiny(torch.nn.Module):
            """A token model with dynamic batch and sequence axes, like the text rows."""

            def __init__(self) -> None:
                super().__init__()
                self.embed = torch.nn.Embedding(8, 2)
                self.linear = torch.nn.Linear(2, 2)

            def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
                return self.linear(self.embed(input_ids).mean(dim=1))

        ctx = DeployContext("preload", Tiny().eval(), "int8_dynamic", [{"input_ids": torch.ones(4, 5, dtype=torch.long)}],
                            True, log=lambda s: None)
        try:
            session(self._export(ctx), 1, self.optimization)
        except Exception:  # the variant's own export reports the failure, with the reason
            pass

    def key_fields(self) -> dict[str, Any]:
        return {**super().key_fields(), "onnxruntime": metadata.version("onnxruntime"),
                "onnx": metadata.version("onnx"), "onnxscript": metadata.version("onnxscript"),
                "torch": torch.__version__}

    def deploy(self, ctx: DeployContext, artifact: bytes | None = None) -> Deployment:
        info: dict[str, Any] = {"exporter": "torch.onnx.export(dynamo=True)", "opset": self.opset,
                                "onnxruntime": metadata.version("onnxruntime")}
        if ctx.request == "int8_dynamic":
            info["quantization"] = (f"onnxruntime.quantization.quantize_dynamic of {'/'.join(INT8_OPS)} (int8 "
                                    f"weights{', per channel' if self.per_channel else ''}, uint8 activations)")
        if self.path is not None:
            return self._given(ctx)
        if artifact is None:
            artifact = self._export(ctx)
        sess = session(artifact, ctx.threads, self.optimization)
        info.update({**described(sess, ctx.threads, self.optimization), "size": "the .onnx file"})
        return Deployment(SessionRunnable(sess), info, artifact, len(artifact))

    def _given(self, ctx: DeployContext) -> Deployment:
        """The user's own .onnx file, checked against the inputs it will be fed: every
        graph input is one of the encoded inputs, and one batch gives one row of logits
        per example. Not exported, not cached, not charged a creation window."""
        artifact = Path(self.path).expanduser().read_bytes()
        sess = session(artifact, ctx.threads, self.optimization)
        runnable = SessionRunnable(sess)
        sample = ctx.samples[0]
        unknown = [n for n in runnable.inputs if n not in sample]
        if unknown:
            raise VariantSkipped(f"the ONNX file {self.path} takes input {unknown[0]!r}, which the parent's encoder "
                                 f"does not give (it gives {', '.join(sample)}); export it with those input names")
        try:
            logits = runnable.logits(runnable(runnable.stage(sample), timeout_s=FOREIGN_TIMEOUT_S))
        except TimeoutError:
            raise VariantSkipped(f"the ONNX file {self.path} ran one batch for over {FOREIGN_TIMEOUT_S:g} s and was "
                                 "stopped") from None
        except Exception as exc:  # onnxruntime raises its own types for a wrong rank or dtype
            raise VariantSkipped(f"the ONNX file {self.path} failed on the parent's inputs: {_first_line(exc)}") from None
        n = next(iter(sample.values())).shape[0]
        if logits.ndim != 2 or logits.shape[0] != n:
            raise VariantSkipped(f"the ONNX file {self.path} gave an output of shape {list(logits.shape)} for a batch "
                                 f"of {n}; its first output must be the logits, one row per example")
        import onnx
        from onnx import numpy_helper

        # weights: float and 8-bit initializers; int32/int64 ones are shapes and indices
        weights = [w for w in (numpy_helper.to_array(t) for t in onnx.load_model_from_string(artifact).graph.initializer)
                   if w.dtype.kind == "f" or w.dtype.itemsize == 1]
        params = (int(sum(w.size for w in weights)), int(sum(np.count_nonzero(w) for w in weights)))
        info = {"model": "an ONNX file made outside joulebench", "path": self.path,
                "sha256": outside.sha256(Path(self.path).expanduser()), "onnxruntime": metadata.version("onnxruntime"),
                **described(sess, ctx.threads, self.optimization), "size": "the given .onnx file",
                "params": "the file's float and 8-bit initializers"}
        return Deployment(runnable, info, None, len(artifact), params)

    def _export(self, ctx: DeployContext) -> bytes:
        module = ctx.module.eval()
        example = max(ctx.samples, key=lambda b: next(iter(b.values())).shape[0])  # widest batch: no size-1 dims
        axes = {0: torch.export.Dim.DYNAMIC, **({1: torch.export.Dim.DYNAMIC} if ctx.sequence_axis else {})}
        with tempfile.TemporaryDirectory(prefix="joulebench-onnx-") as tmp:
            path = Path(tmp) / "model.onnx"
            try:
                with warnings.catch_warnings(), _quiet("torch.onnx", "torch.export", "onnxscript"):
                    warnings.simplefilter("ignore")
                    torch.onnx.export(module, (), str(path), kwargs=example, dynamo=True, opset_version=self.opset,
                                      dynamic_shapes={name: axes for name in example}, external_data=False,
                                      output_names=["logits"], verbose=False)
            except Exception as exc:  # the exporter raises many types; the variant is skipped, with the reason
                raise VariantSkipped(f"torch.onnx.export could not export {ctx.variant_id}: "
                                     f"{_first_line(exc)}") from None
            if ctx.request == "int8_dynamic":
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantized = Path(tmp) / "model.int8.onnx"
                try:
                    with _quiet("root"):
                        quantize_dynamic(path, quantized, op_types_to_quantize=list(INT8_OPS),
                                         per_channel=self.per_channel, weight_type=QuantType.QInt8)
                except Exception as exc:
                    raise VariantSkipped(f"onnxruntime quantize_dynamic failed on {ctx.variant_id}: "
                                         f"{_first_line(exc)}") from None
                path = quantized
            return without_provenance(path.read_bytes())
