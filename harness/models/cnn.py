"""Small convolutional and MLP classifiers: the CNN for images (channels, height, width),
such as digits (8x8); the MLP for images or feature vectors."""

from __future__ import annotations

import math
from typing import Annotated

import torch
from pydantic import Field
from torch import nn

from harness.errors import UserError
from harness.models import MODELS, Encoded, ModelBundle
from harness.registry import between
from harness.tasks import Split, TaskData


class ImageClassifier(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def encode_images(split: Split) -> Encoded:
    return Encoded({"x": torch.as_tensor(split.inputs, dtype=torch.float32)},
                   torch.as_tensor(split.labels, dtype=torch.long))


#: The options' ranges, declared once (the registry checks a suite against them at load):
#: widths a CPU can hold (a 4096-channel conv into a 65536-wide layer is already ~1 GB),
#: at most 16 layers, a dropout probability below 1.
Width = between(1, 65_536, int)
Channels = between(1, 4_096, int)
Dropout = between(0, 1, open_high=True)
Layers = Annotated[list[Width], Field(min_length=1, max_length=16)]
ConvLayers = Annotated[list[Channels], Field(min_length=1, max_length=16)]


def _side(task: TaskData) -> tuple[int, int, int]:
    shape = task.train.inputs.shape[1:]
    if len(shape) != 3:
        raise UserError(f"the cnn family takes images (channels, height, width); task {task.name!r} gives examples "
                        f"of shape {tuple(shape)}: use the mlp family")
    c, h, w = shape
    return int(c), int(h), int(w)


@MODELS.register("cnn")
def build_cnn(task: TaskData, *, channels: ConvLayers = (16, 32), hidden: Width = 64,
              dropout: Dropout = 0.1) -> ModelBundle:
    c, h, w = _side(task)
    layers: list[nn.Module] = []
    for out in channels:
        layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU()]
        c = out
    layers += [nn.MaxPool2d(2), nn.Flatten(),
               nn.Linear(c * (h // 2) * (w // 2), hidden), nn.ReLU(), nn.Dropout(dropout),
               nn.Linear(hidden, task.num_labels)]
    return ModelBundle(ImageClassifier(nn.Sequential(*layers)), encode_images,
                       {"architecture": f"cnn{list(channels)}-fc{hidden}"})


@MODELS.register("mlp")
def build_mlp(task: TaskData, *, hidden: Layers = (64,), dropout: Dropout = 0.0) -> ModelBundle:
    layers: list[nn.Module] = [nn.Flatten()]
    width = int(math.prod(task.train.inputs.shape[1:]))  # features, or an image's pixels
    for out in hidden:
        layers += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(dropout)]
        width = out
    layers.append(nn.Linear(width, task.num_labels))
    return ModelBundle(ImageClassifier(nn.Sequential(*layers)), encode_images,
                       {"architecture": f"mlp{list(hidden)}"})
