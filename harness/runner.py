"""RunSpecs -> records: train (inside an energy window), evaluate, measure inference.

Everything that can fail on bad input (suite, data, meter) fails before the output
directory is created, so a mistake never leaves a half-written run behind.
"""

from __future__ import annotations

import random
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from harness import records
from harness.errors import UserError
from harness.evaluate import evaluate
from harness.measure import measure_inference
from harness.meters import EnergyMonitor
from harness.models import MODELS, Encoded, ModelBundle, count_params
from harness.plan import RunSpec, expand
from harness.suite import Suite
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


class Runner:
    def __init__(self, suite: Suite, task: TaskData, monitor: EnergyMonitor, out_dir: Path,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)) -> None:
        self.suite, self.task, self.monitor, self.out_dir, self.log = suite, task, monitor, out_dir, log
        self._encoded: dict[tuple[str, str], Encoded] = {}

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

    def _encode(self, spec: RunSpec, bundle: ModelBundle, split: str) -> Encoded:
        """Tokenize once per model and split: the same tensors serve every seed."""
        key = (spec.model.name, split)
        if key not in self._encoded:
            data = self.task.train.subset(spec.train.max_samples) if split == "train" else self.task.eval
            self._encoded[key] = bundle.encode(data)
        return self._encoded[key]

    def run_one(self, spec: RunSpec) -> dict[str, Any]:
        if spec.technique is not None:
            raise UserError(f"technique {spec.technique!r} cannot run yet; remove variant {spec.variant_id!r}")
        started = now()
        seed_everything(spec.seed)
        bundle = MODELS.get(spec.model.family)(self.task, **spec.model.options)
        train_data = self._encode(spec, bundle, "train")
        eval_data = self._encode(spec, bundle, "eval")

        t0 = time.perf_counter()
        with self.monitor.window(f"{spec.key}:train") as out:
            stats = train(bundle.module, train_data, spec.train, spec.seed, desc=f"train {spec.key}")
        train_window = out[0]
        self.log(f"  trained {stats.steps} steps in {time.perf_counter() - t0:.1f} s, "
                 f"{train_window.energy_j:.1f} J ({train_window.method}), final loss {stats.final_loss:.3f}")

        result = evaluate(bundle.module, eval_data, self.suite.measure.batch_size)
        self.log(f"  eval accuracy {result.accuracy:.4f} on {result.n} held-out examples")
        inference = measure_inference(bundle.module, eval_data, self.suite.measure, self.monitor,
                                      desc=f"measure {spec.key}")
        n_params, n_nonzero = count_params(bundle.module)
        return {
            "schema": records.SCHEMA,
            "suite": self.suite.name,
            "profile": self.suite.profile,
            "config_hash": self.suite.config_hash(),
            "run_key": spec.key,
            "task": self.task.name,
            "model": spec.model.name,
            "variant_id": spec.variant_id,
            "variant": spec.variant,
            "technique": spec.technique,
            "parent": spec.parent,
            "params": dict(spec.params),
            "seed": spec.seed,
            "model_info": bundle.info,
            "n_params": n_params,
            "n_nonzero_params": n_nonzero,
            "data": {"source": self.task.source, "eval_split": self.task.eval_split,
                     "n_train": len(train_data), "n_eval": len(eval_data)},
            "train": {"epochs": spec.train.epochs, "batch_size": spec.train.batch_size, "lr": spec.train.lr,
                      "steps": stats.steps, "samples": stats.samples, "final_loss": stats.final_loss,
                      "window": train_window.to_dict()},
            "eval": {"accuracy": result.accuracy, "correct": result.correct, "n": result.n,
                     "predictions": result.predictions},
            "inference": {"batch_size": inference.batch_size, "passes": inference.passes,
                          "inferences_per_window": inference.inferences_per_window,
                          "warmup_s": inference.warmup_s,
                          "windows": [w.to_dict() for w in inference.windows]},
            "meter": {"method": self.monitor.method, "formulas": self.monitor.formulas()},
            "started_at": started,
            "finished_at": now(),
        }
