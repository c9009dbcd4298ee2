"""A variant's costs that are counted, not measured: FLOPs per inference and for
training (inspection.py has the conventions), weights, nonzeros and bytes on disk.

The count step of a run, between evaluating a variant and measuring it; it works from
what ``Workshop.obtain`` and ``Workshop.deploy`` returned and from nothing else. A
variant whose kernels torch's counter cannot see (int8, 2:4) reports its parent's
FLOPs, labelled so; a file made outside joulebench (an .onnx) reports none.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.compress import TECHNIQUES
from harness.inspection import forward_flops_per_example, measured_sparsity, state_size, training_flops_per_example
from harness.made import Deployed, Made

TRAIN_RULE = ("3 x forward FLOPs per example x examples (+ teacher forwards); forward FLOPs per training example on "
              "the training batches (seeded shuffle, padded to each batch's longest)")


@dataclass(frozen=True)
class Counts:
    flops: dict[str, Any]  # the record's flops block
    n_params: int
    n_nonzero: int
    size_bytes: int
    sparsity: float | None  # measured on the module (None for int8: its zeros are not tracked)


@functools.lru_cache(maxsize=None)
def _code_digest() -> str:
    """The counting code's digest (read once per process): another count is another key."""
    from harness.files import source_digest

    return source_digest(Path(__file__).parent, ("counts.py", "inspection.py"))


def data_digest(data: Any) -> str:
    """A digest of an encoded split (features, labels, lengths): what FLOPs were counted on."""
    import hashlib

    h = hashlib.sha256()
    if data is not None:
        for name in sorted(data.features):
            h.update(name.encode())
            h.update(data.features[name].detach().cpu().contiguous().numpy().tobytes())
        h.update(data.labels.detach().cpu().contiguous().numpy().tobytes())
        if data.lengths is not None:
            h.update(data.lengths.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class Counter:
    """Counts variant after variant; a child that reports its parent's FLOPs reuses the
    parent's count when the parent was counted in this process. With an artifact cache, a
    count is kept beside the artifact it was made on (keyed by the artifact's key, the
    data it was counted on, the batch sizes and this code), so an unchanged rerun reads
    it instead of counting again; a count is deterministic, so nothing is lost."""

    def __init__(self, batch_size: int, cache: Any = None) -> None:
        self.batch_size = batch_size
        self.cache = cache
        self._flops: dict[tuple[str, int], tuple[float, float]] = {}  # -> (per inference, per train example)

    def count(self, made: Made, deployed: Deployed) -> Counts:
        module = made.built.module
        size_bytes, n_weights, n_nonzero = state_size(module)
        if deployed.deployment.size_bytes is not None:
            size_bytes = deployed.deployment.size_bytes
        if deployed.deployment.params is not None:  # counted in the runtime's own file
            n_weights, n_nonzero = deployed.deployment.params
        if deployed.elsewhere is not None:
            flops = {"per_inference": None, "train": None,
                     "source": "not counted: an ONNX file made outside joulebench (torch's counter sees PyTorch "
                               "modules only)"}
        else:
            flops = self.flops(made, deployed.runtime.flops_note)
        return Counts(flops, n_weights, n_nonzero, size_bytes, measured_sparsity(module))

    def flops(self, made: Made, note: str | None = None) -> dict[str, Any]:
        """FLOPs per inference and for training."""
        spec, built, info = made.spec, made.built, made.info
        key, parent_key = (spec.variant_id, spec.seed), (spec.parent, spec.seed)
        from_parent = spec.technique is not None and TECHNIQUES.get(spec.technique)().counts_flops_on_parent(spec.params)
        if made.borrowed and parent_key in self._flops:  # the parent's module itself, run by another runtime
            self._flops[key] = self._flops[parent_key]
            source = f"parent's (its module, run by {spec.runtime.name})"
        elif from_parent and parent_key in self._flops:  # torch cannot see this variant's kernels
            self._flops[key] = self._flops[parent_key]
            source = "parent's (torch's counter cannot see this variant's kernels)"
        else:
            module = made.parent.module if from_parent else built.module
            self._flops[key] = self._counted(made, from_parent, module)
            source = "torch.utils.flop_counter" + (" on the parent" if from_parent else "")
        per_inf, per_train_example = self._flops[key]
        train_flops: float | None = 3 * per_train_example * info.get("train_samples", 0)
        if info.get("teacher_forward_samples") and parent_key in self._flops:
            train_flops += self._flops[parent_key][1] * info["teacher_forward_samples"]
        if not train_flops:  # nothing trained (quantize, a runtime): no count, not a count of 0
            train_flops = None
        if note:  # the runtime runs other kernels than the ones counted
            source = f"{source}; {note}"
        return {"per_inference": per_inf, "train": train_flops, "source": source, "train_rule": TRAIN_RULE}

    def _counted(self, made: Made, from_parent: bool, module: Any) -> tuple[float, float]:
        """(FLOPs per inference, per training example): from the cache where this artifact
        was counted on these data before, else counted (and kept)."""
        spec = made.spec
        key = None
        if self.cache is not None and made.key:
            from harness.files import digest

            key = digest({"kind": "flops", "artifact": made.key, "on_parent": from_parent,
                          "batch_size": self.batch_size, "train_batch_size": spec.train.batch_size, "seed": spec.seed,
                          "eval": data_digest(made.eval_data), "train": data_digest(made.train_data),
                          "code": _code_digest()})
            got = self.cache.get_counts(key)
            if got is not None and set(got) == {"per_inference", "per_train_example"}:
                return got["per_inference"], got["per_train_example"]
        per_inf = forward_flops_per_example(module, made.eval_data, self.batch_size)
        per_train = training_flops_per_example(module, made.train_data, spec.train.batch_size, spec.seed)
        if key is not None:
            self.cache.put_counts(key, {"per_inference": per_inf, "per_train_example": per_train})
        return per_inf, per_train
