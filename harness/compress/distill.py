"""Knowledge distillation (Hinton et al., 2015): a student learns from a teacher's soft
targets at temperature T, mixed with the hard labels.

    loss = alpha * T^2 * KL(softmax(t / T) || softmax(s / T)) + (1 - alpha) * CE(s, y)

The parent is the teacher (the variant's knowledge comes from it); ``student`` names the
suite model whose architecture and training budget the student takes. The teacher's
logits over the student's training examples are computed once per teacher and seed,
in their own energy window, which is charged to the variant's creation.
"""

from __future__ import annotations

from typing import Any, Literal, Mapping

import torch
import torch.nn.functional as F

from harness.compress import TECHNIQUES, CompressContext, CompressResult, NoParams, Technique
from harness.errors import UserError
from harness.registry import between
from harness.train import train


@TECHNIQUES.register("distill")
class Distill(Technique):
    example = ("cnn", {"student": "mlp", "temperature": 3.0, "alpha": 0.7})  # the conformance checks' (harness.testing)

    class Params(NoParams):
        student: str  # a model of the suite
        temperature: between(0, 100, open_low=True) = 2.0
        alpha: between(0, 1) = 0.5  # the weight of the soft (teacher) loss

    def check(self, params: Mapping[str, Any], where: str, models: set[str]) -> None:
        if params["student"] not in models:
            raise UserError(f"distill in {where} needs student: one of the suite's models "
                            f"({', '.join(sorted(models))}), not {params.get('student')!r}")

    def architecture(self, params: Mapping[str, Any], parent_architecture: str) -> str:
        return params.get("student")  # validate() checks it names a suite model

    def uses_teacher_logits(self, params: Mapping[str, Any]) -> bool:
        return True

    def rebuild(self, parent, fresh, params, info):
        return fresh  # the student: a new module of its own architecture

    def apply(self, ctx: CompressContext) -> CompressResult:
        name = ctx.params["student"]
        temperature = float(ctx.params.get("temperature", 2.0))
        alpha = float(ctx.params.get("alpha", 0.5))
        # the student: built by the workshop right after seeding (its initialization is the seed's)
        student, data = ctx.fresh, ctx.train_data
        windows = {}
        teacher, window = ctx.teacher_logits  # computed once per teacher and budget
        if window is not None:
            windows["teacher_logits"] = window
        soft = F.softmax(teacher / temperature, dim=-1).to(ctx.device.torch)
        labels = data.labels.to(ctx.device.torch)

        def loss(logits: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
            kd = F.kl_div(F.log_softmax(logits / temperature, dim=-1), soft[idx], reduction="batchmean")
            return alpha * temperature ** 2 * kd + (1 - alpha) * F.cross_entropy(logits, labels[idx])

        recorder = ctx.curve(f"{ctx.variant_id}:create", student.module)
        with recorder.window() as out:
            stats = train(student.module, data, ctx.train_cfg, ctx.seed, desc=f"distill {ctx.variant_id}", loss_fn=loss,
                          checkpoint=recorder.checkpoint)
        windows["create"] = out[0]
        return CompressResult(student.module, student, windows, {
            "student": name, "temperature": temperature, "alpha": alpha, "train_steps": stats.steps, "train_samples": stats.samples, "teacher_forward_samples": len(data),
            "teacher_logits": "computed" if "teacher_logits" in windows else "reused (charged when computed)",
        }, recorder.curve())
