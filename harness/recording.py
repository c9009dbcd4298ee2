"""The records of a run, built as typed ``RunRecord``s from the values the run's steps
hand over (a spec, a made and deployed variant, its evaluation, counts and windows): a
skip, a sweep trial, and a measured variant (its inference windows added by ``finished``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from harness import records, work
from harness.config import Suite
from harness.counts import Counts
from harness.device import Device
from harness.environment import now
from harness.evaluate import EvalResult
from harness.files import digest
from harness.measure import InferenceResult
from harness.meters import Measurement
from harness.outside import MadeElsewhere
from harness.plan import RunSpec
from harness.records import RunRecord
from harness.tasks import TaskData
from harness.made import Deployed, Made


@dataclass(frozen=True)
class Recorder:
    """What every record of a run shares: its suite, task, device, meter and fingerprint."""

    suite: Suite
    task: TaskData
    device: Device
    meter: dict[str, Any]  # {"method": ..., "formulas": [...]}
    fingerprint: dict[str, Any]

    def base(self, spec: RunSpec) -> dict[str, Any]:
        return {"schema": records.SCHEMA, "suite": self.suite.name, "profile": self.suite.profile,
                "config_hash": self.suite.config_hash(), "run_config_hash": run_config_hash(self.suite, spec),
                "fingerprint": self.fingerprint, "run_key": spec.key, "task": self.task.name,
                "model": spec.model.name, "variant_id": spec.variant_id, "variant": spec.variant,
                "technique": spec.technique, "parent": spec.parent, "params": dict(spec.params), "seed": spec.seed,
                "device": self.device.describe()}

    def data(self, spec: RunSpec, n_eval: int | None) -> dict[str, Any]:
        return {"source": self.task.source, "eval_split": self.task.eval_split,
                "metric": self.task.info.get("metric", "accuracy"),
                "n_train": min(len(self.task.train), spec.train.max_samples or len(self.task.train)),
                "n_eval": n_eval, "validation": self.task.info.get("validation")}

    @staticmethod
    def creation(spec: RunSpec, windows: dict[str, Any], elsewhere: MadeElsewhere | None = None) -> dict[str, Any]:
        """The creation block: its windows; for a variant made outside joulebench no
        window of its own (``source`` unknown or reported; windows measured on top of
        it, such as an export, are extra windows)."""
        out = {"epochs": spec.train.epochs, "batch_size": spec.train.batch_size, "lr": spec.train.lr,
               "max_samples": spec.train.max_samples, "precision": spec.train.precision,
               "window": windows["create"].to_dict() if "create" in windows else None,
               "extra_windows": {k: w.to_dict() for k, w in windows.items() if k != "create"}}
        if elsewhere is not None:
            out.update(source=elsewhere.source, reported_j=elsewhere.reported_j, note=elsewhere.note(),
                       origin_sha256=elsewhere.sha256)
        return out

    def trial(self, spec: RunSpec, made: Made, started: str) -> RunRecord:
        """A sweep trial: trained under its own window, validated on the carved split
        (its curve), never evaluated on the eval split nor measured for inference."""
        return RunRecord.model_validate({
            **self.base(spec), "status": "trial", "params": dict(spec.trial), "artifact_key": made.key,
            "cached": made.cached, "architecture": made.built.model_name, "technique_info": made.info,
            "data": self.data(spec, None), "train": self.creation(spec, made.windows), "curve": made.curve,
            "meter": self.meter, "started_at": started, "finished_at": now()})

    def skipped(self, spec: RunSpec, why: str, started: str) -> RunRecord:
        """A variant that cannot run here: the reason, in one line."""
        return RunRecord.model_validate({**self.base(spec), "status": "skipped", "reason": why, "meter": self.meter,
                                         "started_at": started, "finished_at": now()})

    def made(self, made: Made, deployed: Deployed, windows: dict[str, Measurement], result: EvalResult,
                counts: Counts, started: str) -> dict[str, Any]:
        """The record of an obtained, deployed, evaluated and counted variant; its
        inference windows are added by ``finish``."""
        spec, built = made.spec, made.built
        elsewhere = made.elsewhere or deployed.elsewhere
        info = dict(made.info)
        if elsewhere is not None:
            info["creation"] = elsewhere.note()
        if deployed.elsewhere is not None:  # the runtime's file is the whole model: the parent's module is not it
            info = {"train_samples": 0, "module": f"the ONNX file {deployed.elsewhere.path}, not the parent's module",
                    "creation": elsewhere.note(), "sparsity": None}
        info.setdefault("sparsity", counts.sparsity)
        return {
            **self.base(spec), "status": "ok",
            "artifact_key": made.key, "model_identity": made.identity, "cached": made.cached,
            "model_info": built.bundle.info, "architecture": built.model_name,
            "technique_info": info,
            "runtime": {"name": spec.runtime.name, "options": deployed.runtime.options(),
                        "info": deployed.deployment.info, "artifact_key": deployed.key or None,
                        "cached": deployed.cached},
            "n_params": counts.n_params, "n_nonzero_params": counts.n_nonzero, "size_bytes": counts.size_bytes,
            "flops": counts.flops,
            "data": self.data(spec, result.n),
            "train": self.creation(spec, windows, elsewhere),
            "curve": made.curve,
            "sweep": made.sweep,
            "eval": {"accuracy": result.accuracy, "correct": result.correct, "n": result.n,
                     "predictions": result.predictions, "labels": made.eval_data.labels.tolist()},
            "started_at": started,
        }

    def finished(self, record: dict[str, Any], results: list[InferenceResult],
                 counted: dict[str, dict[str, Any]] | None = None) -> RunRecord:
        """The record, with the windows at the table's batch size (and at the others),
        each with its counted work where the suite asked for a work pass."""
        counted = counted or {}
        key = record["run_key"]

        def block(inference: InferenceResult) -> dict[str, Any]:
            return {"batch_size": inference.batch_size, "passes": inference.passes,
                    "inferences_per_window": inference.inferences_per_window,
                    "warmup_s": inference.warmup_s, "schedule": inference.schedule,
                    "include_transfer": self.suite.measure.include_transfer,
                    "rounds": list(inference.rounds), "sequence": list(inference.sequence),
                    "compiles_in_windows": inference.compiles_in_windows,
                    "windows": [w.to_dict() for w in inference.windows],
                    "work": counted.get(work.Request(key, inference.batch_size).name)}

        out = {**record, "inference": block(results[0]), "meter": self.meter, "finished_at": now()}
        if len(results) > 1:
            out["inference_sweep"] = [block(r) for r in results[1:]]
        return RunRecord.model_validate(out)

def run_config_hash(suite: Suite, spec: RunSpec) -> str:
    """Hash of everything this one run depends on (not the rest of the suite)."""
    return digest({"task": asdict(suite.task), "spec": asdict(spec), "measure": asdict(suite.measure),
                   "meter": asdict(suite.meter)}, 16)
