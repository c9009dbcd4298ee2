"""What each run is, before anything is made: its artifact key (everything that decides
the trained module, lineage included: the cache's key), whether the seed changes it,
and its identity for pooling seeds in the table. Pure functions of the spec and its
parent's (memoized per run), over a spec as run (``resolve``: a swept baseline with the
selected trial's budget)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Callable

import numpy as np
import torch

from harness import cache as cache_mod
from harness import runtimes
from harness.compress import TECHNIQUES
from harness.config import Suite
from harness.device import Device
from harness.files import digest
from harness.models import MODELS
from harness.plan import RunSpec
from harness.runtimes import Runtime
from harness.tasks import TaskData


def task_fingerprint(task: TaskData) -> str:
    """Hash of the training data (inputs and labels): a checkpoint depends on it."""
    h = hashlib.sha256()
    inputs = task.train.inputs
    if isinstance(inputs, np.ndarray):
        h.update(np.ascontiguousarray(inputs).tobytes())
    else:
        for item in inputs:  # a text, or a (text, pair) tuple
            for text in (item if isinstance(item, tuple) else (item,)):
                h.update(text.encode())
                h.update(b"\0")
    h.update(task.train.labels.tobytes())
    if task.validation is not None:  # the curve (kept with a cached module) depends on it
        h.update(b"validation")
        h.update(task.validation.positions().tobytes())
    return h.hexdigest()


def performed(spec: RunSpec, runtime: Runtime) -> str | None:
    """The technique's work that ``runtime`` does in its place ("int8_dynamic"), or None."""
    if not spec.technique:
        return None
    request = TECHNIQUES.get(spec.technique)().runtime_request(spec.params)
    return request if request in runtime.performs else None


@dataclass
class Lineage:
    """The keys of every spec of a run (by (variant id, seed)), computed once each."""

    suite: Suite
    by_id: dict[tuple[str, int], RunSpec]
    data_fp: str
    device: Device
    resolve: Callable[[RunSpec], RunSpec]
    _keys: dict[tuple[str, int], str] = field(default_factory=dict)
    _identities: dict[tuple[str, int], str] = field(default_factory=dict)

    def compute(self, specs: list[RunSpec]) -> dict[str, tuple[str, str]]:
        """Every spec's (artifact key, identity) by run key, each computed once."""
        return {spec.key: (self.artifact_key(spec), self.identity(spec)) for spec in specs}

    def artifact_key(self, spec: RunSpec) -> str:
        """Hash of everything that determines the trained module, lineage included. A
        swept baseline's is its selected trial's (the same training)."""
        spec = self.resolve(spec)
        k = (spec.variant_id, spec.seed)
        if k not in self._keys:
            parent = self.artifact_key(self.by_id[(spec.parent, spec.seed)]) if spec.parent else None
            self._keys[k] = digest({
                "artifact_version": cache_mod.ARTIFACT_VERSION, "code": cache_mod.code_digest(),
                "device": self.device.cache_tag,  # a module trained on a GPU is not the CPU one
                "torch": torch.__version__, "transformers": metadata.version("transformers"),
                "task": self.suite.task.name, "task_options": self.suite.task.options, "data": self.data_fp,
                "model": asdict(spec.model), "train": asdict(spec.train), "seed": spec.seed,
                "technique": spec.technique, "params": spec.params, "parent": parent,
                # a plugin's technique: its distribution and version (its code is not in code_digest)
                **({"plugin": TECHNIQUES.origin(spec.technique)} if spec.technique and TECHNIQUES.origin(spec.technique) else {}),
                **(TECHNIQUES.get(spec.technique)().key_fields(spec.params) if spec.technique else {}),
            })
        return self._keys[k]

    def same_under_every_seed(self, spec: RunSpec) -> bool:
        """A model the seed does not change (a checkpoint file, its int8; see
        ``Technique.same_under_every_seed``); a baseline trained in the run never is."""
        if not spec.parent:  # a module trained before the run (models/given.py) is one model
            return bool(getattr(MODELS.get(spec.model.family), "seedless", False))
        parent_is = self.same_under_every_seed(self.by_id[(spec.parent, spec.seed)])
        if not spec.technique:  # the parent's module, run by another runtime
            return parent_is
        return TECHNIQUES.get(spec.technique)().same_under_every_seed(spec.params, parent_is)

    def identity(self, spec: RunSpec) -> str:
        """Which model this is, for pooling seeds in the table: its artifact key (seed
        included), or, for a model the seed does not change, a key without the seed, so
        its rows under several seeds are one model, not several."""
        spec = self.resolve(spec)
        k = (spec.variant_id, spec.seed)
        if k not in self._identities:
            self._identities[k] = self._identity(spec)
        return self._identities[k]

    def _identity(self, spec: RunSpec) -> str:
        given = runtimes.create(spec.runtime).given()
        if given is not None:  # the runtime's file is the whole model
            return digest({"file": given.sha256})
        if not self.same_under_every_seed(spec):
            return self.artifact_key(spec)
        parent = self.by_id[(spec.parent, spec.seed)] if spec.parent else None
        technique = TECHNIQUES.get(spec.technique)() if spec.technique else None
        return digest({"seedless": 1, "model": asdict(spec.model), "technique": spec.technique, "params": spec.params,
                       **(technique.key_fields(spec.params) if technique else {}),
                       "parent": self.identity(parent) if parent and self.same_under_every_seed(parent) else None})
