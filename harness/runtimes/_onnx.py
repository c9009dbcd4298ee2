"""An ONNX model as data and as a session: whether the file is self-contained (no tensor
or op that points the runtime at other files), the exporter's per-node notes stripped,
the InferenceSession made from its bytes, a batch run through it (under a time limit for
a foreign graph's checks). Nothing here runs Python from the file."""

from __future__ import annotations

import logging
from importlib import metadata
from typing import Any, Iterator

import numpy as np
import torch

from harness.errors import VariantSkipped
from harness.runtimes import Runnable


INSTALL = "pip install joulebench[onnx]"
#: The ops int8 quantizes: matrix products, the Linear layers torch's dynamic int8
#: quantizes too, so the two int8 rows do the same work. Convolutions stay fp32:
#: dynamic ConvInteger made the digits CNN 6x costlier here (static quantization with
#: calibration is the path for convolutions).
INT8_OPS = ("MatMul", "Gemm")
OPTIMIZATION = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC", "extended": "ORT_ENABLE_EXTENDED",
                "all": "ORT_ENABLE_ALL"}


def missing() -> str | None:
    """Why onnxruntime cannot be used here, or None."""
    for package in ("onnxruntime", "onnx", "onnxscript"):
        try:
            metadata.version(package)
        except metadata.PackageNotFoundError:
            return f"the onnxruntime runtime needs the package {package}; {INSTALL}"
    return None


class SessionRunnable(Runnable):
    """An InferenceSession fed numpy arrays built once per batch (``stage``)."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.inputs = [i.name for i in session.get_inputs()]
        self.outputs = [session.get_outputs()[0].name]

    def stage(self, batch: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
        # the exporter drops inputs the graph does not read; every input it kept is fed
        return {name: np.ascontiguousarray(batch[name].detach().cpu().numpy()) for name in self.inputs}

    def __call__(self, staged: dict[str, np.ndarray], timeout_s: float | None = None) -> list[np.ndarray]:
        if timeout_s is not None:
            return run_bounded(self.session, staged, timeout_s, self.outputs)
        return self.session.run(self.outputs, staged)

    def logits(self, out: list[np.ndarray]) -> torch.Tensor:
        t = torch.from_numpy(np.asarray(out[0]))
        return t.float() if t.dtype.is_floating_point else t  # integer outputs are no logits: the check says so



#: ONNX Runtime's idle workers spin after every run by default (for about 16-50 ms on
#: today's x86 CPUs, up to 0.5 s where the pause is tpause: onnxruntime PR 27916), burning
#: CPU after the run has returned: 47 ms of CPU in the 200 ms after a digits CNN's last
#: run on this project's 2-vCPU VM. After an onnxruntime row's window, the next window
#: (another variant's, in the interleaved rounds) was charged that work, and a target
#: calibrated right after one was timed at half speed. Spinning is stopped after each run
#: (still allowed within one): 0.07 ms of CPU in the same 200 ms.
CONFIG = {"session.force_spinning_stop": "1"}


def described(sess: Any, threads: int, optimization: str) -> dict[str, Any]:
    """How a ``session`` runs, for the record's runtime: providers, threads, spinning,
    graph optimization."""
    return {"providers": sess.get_providers(), "intra_op_threads": threads, "inter_op_threads": 1,
            "spinning": "stopped after each run (" + ", ".join(f"{k}={v}" for k, v in CONFIG.items())
                        + "), allowed within one",
            "graph_optimization": optimization}


def session(artifact: bytes, threads: int, optimization: str) -> Any:
    """An InferenceSession on the CPU execution provider, from a self-contained file's bytes."""
    import onnxruntime as ort

    why = external_data(artifact)
    if why and why.startswith(NOT_ONNX):
        raise VariantSkipped(f"onnxruntime could not load the exported model: {why}")
    if why:  # onnxruntime would read another file's bytes as weights
        raise VariantSkipped(f"refusing an ONNX file that is not self-contained: {why}")

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = getattr(ort.GraphOptimizationLevel, OPTIMIZATION[optimization])
    so.log_severity_level = 3  # errors only
    for key, value in CONFIG.items():
        so.add_session_config_entry(key, value)
    try:
        return ort.InferenceSession(artifact, so, providers=["CPUExecutionProvider"])
    except Exception as exc:  # a file from the cache that onnxruntime cannot load
        raise VariantSkipped(f"onnxruntime could not load the exported model: {_first_line(exc)}") from None


NOT_ONNX = "not an ONNX model"
#: The longest one batch of a foreign graph may run in a check before it is stopped.
FOREIGN_TIMEOUT_S = 60.0


def run_bounded(session: Any, feeds: dict[str, np.ndarray], timeout_s: float,
                outputs: list[str] | None = None) -> list[np.ndarray]:
    """``session.run`` stopped after ``timeout_s`` (onnxruntime's own RunOptions.terminate,
    set from a timer: a graph's Loop of 2**62 trips ends with TimeoutError, not a hang)."""
    import threading

    import onnxruntime as ort

    options = ort.RunOptions()
    options.log_severity_level = 4  # the stop is ours to report, in one line: not onnxruntime's error log
    fired = threading.Event()

    def stop() -> None:
        fired.set()
        options.terminate = True

    timer = threading.Timer(timeout_s, stop)
    timer.start()
    try:
        return session.run(outputs, feeds, options)
    except Exception:
        if fired.is_set():
            raise TimeoutError(f"stopped after {timeout_s:g} s") from None
        raise
    finally:
        timer.cancel()


#: Ops whose attributes name files for a runtime to open (an execution provider's
#: context binary, ``ep_cache_context`` with ``embed_mode: 0``): a graph is refused.
FILE_OPS = ("EPContext",)


def external_data(artifact: bytes) -> str | None:
    """Why the ONNX model in ``artifact`` is not self-contained (a tensor stored outside
    the file: onnxruntime would open the path it names), or None.

    One walker over the whole message, by protobuf reflection: every TensorProto
    anywhere (graph and subgraph initializers, sparse initializers, node attributes,
    local functions and their attribute defaults, training info, fields added in later
    ONNX versions) is looked at, and so is every node's op type, wherever it sits."""
    import onnx

    try:
        model = onnx.load_model_from_string(artifact)
    except Exception as exc:  # not a protobuf onnx can parse
        return f"{NOT_ONNX} ({_first_line(exc)})"
    for msg in _messages(model):
        if isinstance(msg, onnx.TensorProto):
            if msg.data_location == onnx.TensorProto.EXTERNAL or len(msg.external_data):
                where = next((e.value for e in msg.external_data if e.key == "location"), "?")
                return f"tensor {msg.name!r} is stored outside the file ({where!r})"
        elif isinstance(msg, onnx.NodeProto) and msg.op_type in FILE_OPS:
            return f"node {msg.name!r} is an {msg.op_type}, whose attributes point the runtime at other files"
    return None


def _messages(model: Any) -> Iterator[Any]:
    """Every protobuf message inside ``model``, itself included, by reflection (so no
    field is missed, today's or a later ONNX version's); iterative, so a deeply nested
    graph is no RecursionError."""
    stack: list[Any] = [model]
    while stack:
        msg = stack.pop()
        yield msg
        for field, value in msg.ListFields():
            if field.type == field.TYPE_MESSAGE:
                stack.extend(value if _repeated(field) else [value])


def without_provenance(artifact: bytes) -> bytes:
    """The exported model without the exporter's per-node notes (torch.onnx writes each
    node's Python stack trace, with the checkout's absolute paths, into its metadata):
    the file, and so the row's size on disk, is then the same wherever joulebench runs."""
    import onnx

    model = onnx.load_model_from_string(artifact)
    for node in [m for m in _messages(model) if isinstance(m, onnx.NodeProto)]:  # the same walk as external_data
        del node.metadata_props[:]
        node.doc_string = ""
    return model.SerializeToString()


def _repeated(field: Any) -> bool:
    """A protobuf field descriptor's repetition, in old (``label``) and new (``is_repeated``) protobuf."""
    flag = getattr(field, "is_repeated", None)
    return bool(flag) if flag is not None else field.label == field.LABEL_REPEATED


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__)[:200]


class _quiet:
    """Loggers at ERROR for the duration (the exporter logs every op it translates)."""

    def __init__(self, *names: str) -> None:
        self.loggers = [logging.getLogger(n if n != "root" else None) for n in names]
        self.levels: list[int] = []

    def __enter__(self) -> None:
        self.levels = [lg.level for lg in self.loggers]
        for lg in self.loggers:
            lg.setLevel(logging.ERROR)

    def __exit__(self, *exc: Any) -> None:
        for lg, level in zip(self.loggers, self.levels):
            lg.setLevel(level)
