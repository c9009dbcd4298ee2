"""Where the tensors live: the suite's ``device:`` (or ``--device``) resolved once.

``auto`` picks the first CUDA GPU torch sees, else the CPU; ``cpu``, ``cuda`` and
``cuda:N`` ask for one. Asking for a GPU that torch cannot see is a one-line error
before anything is read or written.

A ``Device`` is a plain value the rest of the harness is handed (training, evaluation,
measurement, FLOP counting, the meters, the cache key). It owns the one thing that
must be exact at every window edge: ``sync()`` waits for the work queued on *this*
GPU and no other, and on a CPU run it touches CUDA not at all, so no context is ever
created on an idle GPU. ``cuda`` is the torch.cuda-like module used, a constructor
argument so tests can pass a fake at exactly this boundary.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from harness.errors import UserError

if TYPE_CHECKING:  # torch is imported where it is used: suite and meters stay light
    import torch

CHOICES = "auto, cpu, cuda or cuda:N"


@dataclass(frozen=True)
class Device:
    """A resolved device. ``name`` is what records print (``cpu``, ``cuda:0``)."""

    type: str  # "cpu" or "cuda"
    index: int | None = None  # the CUDA ordinal, as torch numbers visible GPUs
    model: str = ""  # e.g. "NVIDIA H100 80GB HBM3"; the CPU model is in the fingerprint
    uuid: str | None = None  # "GPU-...", as NVML names the board; None where torch cannot say
    capability: tuple[int, int] | None = None  # CUDA compute capability
    requested: str = "auto"
    sync_fn: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    @property
    def torch(self) -> "torch.device":
        import torch

        return torch.device(self.name)

    @property
    def is_cuda(self) -> bool:
        return self.type == "cuda"

    @property
    def cache_tag(self) -> str:
        """What the artifact-cache key holds: the kind of chip, not which slot it sits in."""
        return self.type if not self.is_cuda else f"cuda:{self.model}"

    def sync(self) -> None:
        """Wait for the work queued on this device (nothing to wait for on the CPU)."""
        if self.sync_fn is not None:
            self.sync_fn()

    def describe(self) -> dict[str, Any]:
        """What every record and the environment say about the device."""
        return {"name": self.name, "type": self.type, "index": self.index, "model": self.model or None,
                "uuid": self.uuid, "capability": list(self.capability) if self.capability else None,
                "requested": self.requested}


CPU = Device("cpu", requested="cpu")


def parse(spec: str, where: str = "--device") -> tuple[str, int | None]:
    """``spec`` -> (kind, ordinal); kind is auto, cpu or cuda."""
    if not isinstance(spec, str):
        raise UserError(f"{where} must be one of {CHOICES}, got {spec!r}")
    m = re.fullmatch(r"(auto|cpu|cuda)(?::(\d+))?", spec.strip())
    if not m or (m.group(2) is not None and m.group(1) != "cuda"):
        raise UserError(f"{where} {spec!r} is not a device; use {CHOICES}")
    return m.group(1), int(m.group(2)) if m.group(2) is not None else None


def resolve(spec: str, cuda: Any = None, where: str = "--device") -> Device:
    """The device ``spec`` names, checked against what torch sees here."""
    import torch

    kind, index = parse(spec, where)
    cuda = torch.cuda if cuda is None else cuda
    if kind == "cpu":
        return Device("cpu", requested=spec)
    available = bool(cuda.is_available())
    if kind == "auto" and not available:
        return Device("cpu", requested=spec)
    if not available:
        build = getattr(torch.version, "cuda", None)
        why = "this torch is a CPU-only build" if not build else f"torch (CUDA {build}) finds no GPU or driver"
        raise UserError(f"device {spec!r} asked for but {why}; use --device cpu, or install a CUDA build of torch "
                        "on a machine with an NVIDIA GPU")
    count = int(cuda.device_count())
    index = 0 if index is None else index
    if index >= count:
        raise UserError(f"device {spec!r} asked for but torch sees {count} GPU(s) (cuda:0..cuda:{count - 1}); "
                        "pick one of those, or check CUDA_VISIBLE_DEVICES")
    props = cuda.get_device_properties(index)
    uuid = getattr(props, "uuid", None)
    uuid = None if uuid is None else (str(uuid) if str(uuid).startswith(("GPU-", "MIG-")) else f"GPU-{uuid}")
    return Device("cuda", index, str(props.name), uuid, (int(props.major), int(props.minor)), spec,
                  sync_fn=lambda: cuda.synchronize(index))


def prepare(device: Device) -> None:
    """Create the CUDA context now, so the idle baseline sees the GPU as the windows will
    (a context raises a board's idle draw), and make cuDNN pick deterministic kernels."""
    import torch

    if device.is_cuda:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.empty(1, device=device.torch)
        device.sync()


def to_device(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}
