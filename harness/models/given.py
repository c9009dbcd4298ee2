"""The module handed to ``api.bench``: a model family with no recipe. Its builder returns
a private copy of the user's module, already trained, with how its creation is known:
the window ``api.track`` measured around the user's own loop, the figure the user
reports, or unknown (never 0 J).

The module is held in this process for the length of one ``api.bench`` call only, under
the digest of its class and weights (the family's one option, so the artifact keys and
identities of its variants follow the weights). A suite file cannot name it: a suite
never imports a user's Python, and the builder refuses in one line where nothing is held.
"""

from __future__ import annotations

import copy
import hashlib
import math
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any, Iterator

import torch
from pydantic import Field
from torch import nn

from harness.errors import UserError
from harness.models import MODELS, Encoded, ModelBundle
from harness.outside import MadeElsewhere
from harness.tasks import Split, TaskData

FAMILY = "given"


@dataclass(frozen=True)
class Given:
    """How a given module's creation is known: its measured window (``{"create": ...}``),
    or made elsewhere (unknown, or reported by the user), with a line saying which."""

    windows: dict[str, Any] = field(default_factory=dict)
    elsewhere: MadeElsewhere | None = None
    info: dict[str, Any] = field(default_factory=dict)


def logits(out: Any) -> torch.Tensor:
    """The class logits of a forward's output: a tensor, an output with ``.logits`` (a
    Hugging Face model), or the first tensor of a tuple."""
    if isinstance(out, torch.Tensor):
        return out
    got = getattr(out, "logits", None)
    if isinstance(got, torch.Tensor):
        return got
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    raise UserError(f"the given model returns {type(out).__name__}; it must return class logits [N, classes] "
                    "(a tensor, or an output with .logits)")


class GivenModule(nn.Module):
    """The user's module, called as ``model(x)``, returning its logits."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return logits(self.body(x))


def encode(split: Split) -> Encoded:
    """Features as the user gave them (float32, or int64 token ids), labels as int64."""
    return Encoded({"x": torch.as_tensor(split.inputs)}, torch.as_tensor(split.labels, dtype=torch.long))


def weights_digest(module: nn.Module) -> str:
    """The module's class and every tensor of its state (names, shapes, dtypes, bytes)."""
    h = hashlib.sha256(f"{type(module).__module__}.{type(module).__qualname__}".encode())
    for name, t in module.state_dict().items():
        h.update(f"\0{name}\0{tuple(t.shape)}\0{t.dtype}\0".encode())
        if isinstance(t, torch.Tensor) and not t.is_quantized:
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes()
                     if t.numel() else b"")
    return h.hexdigest()


_held: dict[str, tuple[nn.Module, Given]] = {}


@contextmanager
def held(key: str, module: nn.Module, given: Given) -> Iterator[None]:
    """``module`` buildable as family ``given`` with option ``weights: key`` (its
    ``weights_digest``) while the block runs."""
    _held[key] = (module, given)
    try:
        yield
    finally:
        _held.pop(key, None)


Digest = Annotated[str, Field(min_length=64, max_length=64)]


@MODELS.register(FAMILY)
def build_given(task: TaskData, *, weights: Digest) -> ModelBundle:
    if weights not in _held:
        raise UserError("model family 'given' is a module handed to api.bench in Python; a suite file names a family "
                        "(mlp, cnn, bert, transformers) or a checkpoint file (docs/data-and-models.md)")
    module, given = _held[weights]
    return ModelBundle(GivenModule(copy.deepcopy(module)), encode,
                       {"architecture": type(module).__name__, "given": "the module given to api.bench"},
                       given=given)


@contextmanager
def example(task: TaskData) -> Iterator[dict[str, Any]]:
    """The options the family's checks build it with: a small classifier of ``task``'s
    shape, held while the block runs (tests/test_models.py loops over every family)."""
    module = nn.Sequential(nn.Flatten(), nn.Linear(math.prod(task.train.inputs.shape[1:]), task.num_labels))
    key = weights_digest(module)
    with held(key, module, Given()):
        yield {"weights": key}


#: One model whatever the run's seed: it was trained before the run (lineage.py pools it once).
build_given.seedless = True  # type: ignore[attr-defined]
build_given.example = example  # type: ignore[attr-defined]
