"""The values a variant passes down the run's chain: ``Built`` (a module and its
encoder), ``Made`` (a variant as made or fetched, with what the next steps work from)
and ``Deployed`` (as it runs under its runtime, and what deploying it cost)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from harness.meters import Measurement
from harness.models import Encoded, ModelBundle
from harness.outside import MadeElsewhere
from harness.plan import RunSpec
from harness.runtimes import Deployment, Runtime


@dataclass
class Built:
    module: nn.Module  # as created or cached: what children derive from, what is sized
    bundle: ModelBundle
    model_name: str  # the suite model whose architecture and encoder it has
    runnable: nn.Module | None = None  # as it runs: the technique's finalize (2:4 kernels), else module

    @property
    def runs(self) -> nn.Module:
        """The module evaluated and measured."""
        return self.runnable if self.runnable is not None else self.module


@dataclass
class Made:
    """A variant as made (or fetched): the module, its creation windows and details."""

    built: Built
    windows: dict[str, Measurement]
    info: dict[str, Any]
    cached: dict[str, Any] | None = None  # {"measured_at", "host", "key"} when it came from the cache
    key: str = ""
    borrowed: bool = False  # the parent's module itself, run by another runtime (see Workshop._borrow)
    curve: dict[str, Any] | None = None  # its training curve (curves.py), where the suite asked for one
    elsewhere: MadeElsewhere | None = None  # made outside joulebench (a checkpoint file): no creation window
    # -- what the steps after obtaining work from (set by Workshop.obtain) ----------------
    spec: RunSpec | None = None  # as run: a swept baseline's with the selected trial's budget
    eval_data: Encoded | None = None  # the eval split, encoded for its architecture (not for a sweep trial)
    train_data: Encoded | None = None  # its training examples, encoded: what FLOPs are counted on
    parent: Built | None = None  # its parent as obtained in this process (FLOPs counted on it)
    sweep: dict[str, Any] | None = None  # the swept baseline's: how its budget was chosen, what the search cost
    trial: dict[str, Any] | None = None  # a sweep trial's result: validation accuracy and energy
    identity: str = ""  # the model's, for pooling seeds (Workshop.identity)


@dataclass
class Deployed:
    """A variant as it runs under its runtime, and what deploying it cost."""

    runtime: Runtime
    deployment: Deployment
    window: Measurement | None  # export / quantization / compilation; None for eager
    cached: dict[str, Any] | None = None  # {"measured_at", "host", "key"} when the artifact came from the cache
    key: str = ""
    elsewhere: MadeElsewhere | None = None  # the runtime's file was given by path: not made here, not measured
