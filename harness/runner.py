"""RunSpecs -> records: create each variant (train, or compress its parent) inside energy
windows, evaluate it on the held-out split, then measure its inference energy.

Everything that can fail on bad input (suite, data, meter) fails before the output
directory is created, so a mistake never leaves a half-written run behind.
"""

from __future__ import annotations

import copy
import io
import random
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from harness import records
from harness.compress import TECHNIQUES, CompressContext, CompressResult, VariantSkipped
from harness.compress.prune import measured_sparsity
from harness.errors import UserError
from harness.evaluate import evaluate
from harness.flops import forward_flops_per_example
from harness.measure import measure_inference
from harness.meters import EnergyMonitor
from harness.models import MODELS, Encoded, ModelBundle
from harness.plan import RunSpec, expand
from harness.suite import ModelConfig, Suite, TrainConfig
from harness.tasks import TASKS, TaskData
from harness.train import train


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def load_task(suite: Suite, data_dir: Path | None) -> TaskData:
    return TASKS.get(suite.task.name)(data_dir, **suite.task.options)


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def state_size(module: nn.Module) -> tuple[int, int, int]:
    """(bytes of the saved state dict, weights, nonzero weights). Counted from the state
    dict so int8-packed and half-precision weights count like any other."""
    buf = io.BytesIO()
    state = module.state_dict()
    torch.save(state, buf)
    total = nonzero = 0

    def visit(value: Any) -> None:
        nonlocal total, nonzero
        if isinstance(value, torch.Tensor):
            if value.is_quantized:
                value = value.int_repr()
            elif not value.is_floating_point():
                return  # integer buffers (position ids, counters) are not weights
            total += value.numel()
            nonzero += int(torch.count_nonzero(value))
        elif isinstance(value, (tuple, list)):
            for v in value:
                visit(v)

    for key, value in state.items():
        if not key.endswith("_packed_params.dtype"):
            visit(value)
    return buf.getbuffer().nbytes, total, nonzero


@dataclass
class Built:
    module: nn.Module
    bundle: ModelBundle
    model_name: str  # the suite model whose architecture and encoder it has


class Runner:
    def __init__(self, suite: Suite, task: TaskData, monitor: EnergyMonitor, out_dir: Path,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> None:
        self.suite, self.task, self.monitor, self.out_dir, self.log = suite, task, monitor, out_dir, log
        self._encoded: dict[tuple[str, str, int | None], Encoded] = {}
        self._built: dict[tuple[str, int], Built] = {}
        self._skipped: dict[tuple[str, int], str] = {}
        self._cache: dict[Any, Any] = {}
        self._flops: dict[tuple[str, int], tuple[float, float]] = {}  # -> (per inference, per train example)
        self._models = {m.name: m for m in suite.models}

    def start(self) -> None:
        if (self.out_dir / records.RECORDS).exists():
            raise UserError(f"{self.out_dir} already holds records; pass a new --out directory")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        env = records.environment(self.monitor.method, self.monitor.formulas())
        env["idle_w"] = self.measure_idle()
        env["suite"] = {"name": self.suite.name, "path": self.suite.path, "profile": self.suite.profile,
                        "config_hash": self.suite.config_hash(), "resolved": self.suite.resolved}
        env["data"] = {"source": self.task.source, "eval_split": self.task.eval_split,
                       "n_train": len(self.task.train), "n_eval": len(self.task.eval), **self.task.info}
        records.write_json_atomic(self.out_dir / records.ENVIRONMENT, env)

    def measure_idle(self) -> dict[str, float]:
        seconds = self.suite.measure.idle_s
        if seconds <= 0:
            return {}
        idle = self.monitor.measure_idle(seconds)
        self.log(f"  idle baseline over {seconds:g} s: {sum(idle.values()):.3g} W ("
                 + ", ".join(f"{c} {w:.3g} W" for c, w in idle.items()) + ")")
        return idle

    def run_all(self) -> Path:
        self.start()
        path = self.out_dir / records.RECORDS
        specs = expand(self.suite)
        for i, spec in enumerate(specs, start=1):
            if self.suite.measure.idle_between_variants and i > 1 and spec.variant_id != specs[i - 2].variant_id:
                self.measure_idle()
            self.log(f"[{i}/{len(specs)}] {self.suite.name}: {spec.key}")
            records.append(path, self.run_one(spec))
        return path

    def encode_train(self, model_name: str, bundle: ModelBundle, cfg: TrainConfig) -> Encoded:
        """Tokenize once per model and training budget: the same tensors serve every seed."""
        key = (model_name, "train", cfg.max_samples)
        if key not in self._encoded:
            self._encoded[key] = bundle.encode(self.task.train.subset(cfg.max_samples))
        return self._encoded[key]

    def encode_eval(self, model_name: str, bundle: ModelBundle) -> Encoded:
        key = (model_name, "eval", None)
        if key not in self._encoded:
            self._encoded[key] = bundle.encode(self.task.eval)
        return self._encoded[key]

    def build(self, model: ModelConfig) -> ModelBundle:
        return MODELS.get(model.family)(self.task, **model.options)

    def _baseline(self, spec: RunSpec) -> tuple[Built, dict[str, Any], dict[str, Any]]:
        bundle = self.build(spec.model)
        data = self.encode_train(spec.model.name, bundle, spec.train)
        with self.monitor.window(f"{spec.key}:train") as out:
            stats = train(bundle.module, data, spec.train, spec.seed, desc=f"train {spec.key}")
        info = {"steps": stats.steps, "train_samples": stats.samples, "final_loss": stats.final_loss}
        return Built(bundle.module, bundle, spec.model.name), {"create": out[0]}, info

    def _variant(self, spec: RunSpec) -> tuple[Built, dict[str, Any], dict[str, Any]]:
        parent = self._built[(spec.parent, spec.seed)]
        ctx = CompressContext(
            variant_id=spec.variant_id, model_name=parent.model_name, parent=copy.deepcopy(parent.module),
            parent_bundle=parent.bundle, params=spec.params, train_cfg=spec.train, seed=spec.seed,
            task=self.task, monitor=self.monitor, models=self._models, build=self.build,
            encode_train=self.encode_train, cache=self._cache,
        )
        result: CompressResult = TECHNIQUES.get(spec.technique)().apply(ctx)
        name = spec.params.get("student", parent.model_name)
        return Built(result.module, result.bundle, name), result.windows, result.info

    def run_one(self, spec: RunSpec) -> dict[str, Any]:
        started = now()
        seed_everything(spec.seed)
        base = {"schema": records.SCHEMA, "suite": self.suite.name, "profile": self.suite.profile,
                "config_hash": self.suite.config_hash(), "run_key": spec.key, "task": self.task.name,
                "model": spec.model.name, "variant_id": spec.variant_id, "variant": spec.variant,
                "technique": spec.technique, "parent": spec.parent, "params": dict(spec.params), "seed": spec.seed}
        parent_skip = self._skipped.get((spec.parent, spec.seed)) if spec.parent else None
        try:
            if parent_skip:
                raise VariantSkipped(f"its parent {spec.parent} was skipped ({parent_skip})")
            t0 = time.perf_counter()
            built, windows, info = self._variant(spec) if spec.technique else self._baseline(spec)
        except VariantSkipped as why:
            self._skipped[(spec.variant_id, spec.seed)] = str(why)
            self.log(f"  skipped {spec.variant_id}: {why}")
            return {**base, "status": "skipped", "reason": str(why), "meter": self._meter(),
                    "started_at": started, "finished_at": now()}
        self._built[(spec.variant_id, spec.seed)] = built
        create_j = sum(w.energy_j for w in windows.values())
        self.log(f"  created in {time.perf_counter() - t0:.1f} s, {create_j:.1f} J ({windows['create'].method})")

        eval_data = self.encode_eval(built.model_name, built.bundle)
        result = evaluate(built.module, eval_data, self.suite.measure.batch_size)
        self.log(f"  eval accuracy {result.accuracy:.4f} on {result.n} held-out examples")
        inference = measure_inference(built.module, eval_data, self.suite.measure, self.monitor,
                                      desc=f"measure {spec.key}")
        flops = self._count_flops(spec, built, eval_data, info)
        size_bytes, n_weights, n_nonzero = state_size(built.module)
        if "sparsity" not in info:
            try:
                info["sparsity"] = measured_sparsity(built.module)
            except ZeroDivisionError:  # no float Linear/Conv left (int8): zeros are not tracked
                info["sparsity"] = None
        return {
            **base, "status": "ok",
            "model_info": built.bundle.info, "architecture": built.model_name,
            "technique_info": info,
            "n_params": n_weights, "n_nonzero_params": n_nonzero, "size_bytes": size_bytes,
            "flops": flops,
            "data": {"source": self.task.source, "eval_split": self.task.eval_split,
                     "n_train": min(len(self.task.train), spec.train.max_samples or len(self.task.train)),
                     "n_eval": len(eval_data)},
            "train": {"epochs": spec.train.epochs, "batch_size": spec.train.batch_size, "lr": spec.train.lr,
                      "max_samples": spec.train.max_samples,
                      "window": windows["create"].to_dict(),
                      "extra_windows": {k: w.to_dict() for k, w in windows.items() if k != "create"}},
            "eval": {"accuracy": result.accuracy, "correct": result.correct, "n": result.n,
                     "predictions": result.predictions, "labels": eval_data.labels.tolist()},
            "inference": {"batch_size": inference.batch_size, "passes": inference.passes,
                          "inferences_per_window": inference.inferences_per_window,
                          "warmup_s": inference.warmup_s,
                          "windows": [w.to_dict() for w in inference.windows]},
            "meter": self._meter(),
            "started_at": started,
            "finished_at": now(),
        }

    def _count_flops(self, spec: RunSpec, built: Built, eval_data: Encoded, info: dict[str, Any]) -> dict[str, Any]:
        """FLOPs per inference and for training (see flops.py for the conventions)."""
        key = (spec.variant_id, spec.seed)
        if spec.technique == "quantize":  # torch's counter does not see int8 kernels
            self._flops[key] = self._flops[(spec.parent, spec.seed)]
            source = "parent's (quantized kernels are not counted by torch)"
        else:
            batch = self.suite.measure.batch_size
            per_inf = forward_flops_per_example(built.module, eval_data, batch)
            train_data = self.encode_train(built.model_name, built.bundle, spec.train)
            self._flops[key] = (per_inf, forward_flops_per_example(built.module, train_data, batch))
            source = "torch.utils.flop_counter"
        per_inf, per_train_example = self._flops[key]
        train_flops = 3 * per_train_example * info.get("train_samples", 0)
        if info.get("teacher_forward_samples"):
            train_flops += self._flops[(spec.parent, spec.seed)][1] * info["teacher_forward_samples"]
        return {"per_inference": per_inf, "train": train_flops, "source": source,
                "train_rule": "3 x forward FLOPs per example x examples (+ teacher forwards)"}

    def _meter(self) -> dict[str, Any]:
        return {"method": self.monitor.method, "formulas": self.monitor.formulas()}
