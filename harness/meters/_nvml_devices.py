"""Which NVML devices a run meters: ``CUDA_VISIBLE_DEVICES`` read as CUDA reads it
(ordinals, UUIDs and their prefixes, MIG entries), mapped to NVML handles."""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from harness.errors import MeterError


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def visible_entries(env: Mapping[str, str] | None) -> list[str] | None:
    """CUDA_VISIBLE_DEVICES as CUDA reads it (stopping at the first invalid entry), or
    None when it is unset (every GPU visible)."""
    env = os.environ if env is None else env
    spec = env.get("CUDA_VISIBLE_DEVICES")
    if spec is None:
        return None
    out = []
    for item in (s.strip() for s in spec.split(",")):
        if not (item.isdigit() or item.startswith(("GPU-", "MIG-"))):
            break  # CUDA stops at the first invalid entry; so do we
        out.append(item)
    return out


def _by_uuid_prefix(nvml: Any, prefix: str) -> Any:
    matches = []
    for i in range(nvml.nvmlDeviceGetCount()):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        if _text(nvml.nvmlDeviceGetUUID(h)).startswith(prefix):
            matches.append(h)
    if len(matches) != 1:
        raise MeterError(f"CUDA_VISIBLE_DEVICES entry {prefix!r} matches {len(matches)} GPUs in NVML; "
                         "give a longer (unique) GPU- UUID or an index")
    return matches[0]


def _handle(nvml: Any, entry: str, env: Mapping[str, str], ordered: bool = True) -> Any:
    if entry.startswith("MIG-"):
        raise MeterError(f"the run uses MIG instance {entry}; NVML's energy counter covers the whole GPU, not one "
                         "slice, so it cannot be attributed: run on a whole GPU, or choose meter: estimate")
    if entry.startswith("GPU-"):
        return _by_uuid_prefix(nvml, entry)
    if ordered and nvml.nvmlDeviceGetCount() > 1 and env.get("CUDA_DEVICE_ORDER") != "PCI_BUS_ID":
        raise MeterError("several GPUs and CUDA_DEVICE_ORDER is not PCI_BUS_ID, so CUDA's GPU numbers need not be "
                         "NVML's; export CUDA_DEVICE_ORDER=PCI_BUS_ID (or name GPUs by UUID in CUDA_VISIBLE_DEVICES)")
    return nvml.nvmlDeviceGetHandleByIndex(int(entry))


def select_handles(nvml: Any, ordinals: Sequence[int] | None = None, env: Mapping[str, str] | None = None,
                   uuids: Mapping[int, str | None] | None = None) -> dict[str, Any]:
    """``{"gpuN": handle}`` for the CUDA ordinals N the run uses; None = every visible GPU."""
    env = os.environ if env is None else env
    entries = visible_entries(env)
    if entries is None:
        entries = [str(i) for i in range(nvml.nvmlDeviceGetCount())]
    if ordinals is None:  # the whole box: which number is which does not matter
        return {f"gpu{k}": _handle(nvml, e, env, ordered=False) for k, e in enumerate(entries)}
    out = {}
    for k in ordinals:
        uuid = (uuids or {}).get(k)
        if uuid and not uuid.startswith("MIG-"):
            out[f"gpu{k}"] = nvml.nvmlDeviceGetHandleByUUID(uuid)  # what torch itself reported: exact
            continue
        if k >= len(entries):
            raise MeterError(f"the run uses cuda:{k} but CUDA_VISIBLE_DEVICES makes only {len(entries)} GPU(s) "
                             "visible; check CUDA_VISIBLE_DEVICES")
        out[f"gpu{k}"] = _handle(nvml, uuid or entries[k], env)
    return out
