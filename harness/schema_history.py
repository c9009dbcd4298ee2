"""Schema history (readers accept every version listed; ``upgrade`` brings each to the
current one on read):
- 1: first version (suite, lineage, train window, eval predictions and labels,
  inference windows).
- 2: provenance (run_config_hash, fingerprint), artifact_key and cached, flops.
- 3: every energy window names the host it was measured on (``host``), and the
  fingerprint carries it, so creation energy reused from a cache filled on another
  machine is labelled with that machine and its method.
- 4: the device the run used (``device``: cpu or cuda:N, its model and UUID), the
  training precision, inference windows at further batch sizes (``inference_sweep``),
  windows' NVML cross-check readings (``cross_check``), and per-window uncertainty
  (NVML's +-5 W is a different fraction in every window). Older records ran on the
  CPU: nothing left it before version 4.
- 5: the runtime the variant ran under (``runtime``: eager, compile, onnxruntime, its
  options and what deploying it did), and the graphs compiled inside the inference
  windows (``compiles_in_windows``: 0 for compiled code that is warm, None for a
  runtime that never compiles). Older records ran eager PyTorch.
- 6: training curves (``curve``: validation accuracy on a split carved from the training
  data against cumulative training joules, with the validation passes' own windows),
  the carved split in ``data.validation``, sweep trials (``status: "trial"``: trained and
  validated, never evaluated on the eval split or measured), and on a swept model's
  baseline the search that chose its budget (``sweep``). Older records have no curve.
- 7: every window counts the Python modules first imported inside it (``imports``);
  training FLOPs are counted on the batches training runs (padding included); a sweep's
  ``tuning_J_per_seed`` beside its total; the fingerprint describes the machine as the
  kernels see it (``machine``: CPU vendor/family/model/stepping, ISA flags, torch's CPU
  capability, cores, memory). Older records keep what they had: their windows' imports
  are unknown (None), their tuning total is divided by their seeds on read.
- 8: each inference block may carry its target's counted work (``work``: instructions
  per inference under valgrind's callgrind, the raw count, passes, tool and threads, or
  why nothing was counted). Older records counted none.
- 9: a variant made outside joulebench (a checkpoint file, an ONNX file) has no
  creation window: ``train.window`` is None and ``train.source`` says whether its
  creation energy is ``unknown`` or ``reported`` by the user (``reported_j``), never 0 J.
  Older records measured every creation (``source: measured``).
"""

from __future__ import annotations

from typing import Any

SCHEMA = 9
READABLE = {1, 2, 3, 4, 5, 6, 7, 8, 9}
#: What a record older than schema 4 ran on: joulebench moved no tensor off the CPU then.
CPU_DEVICE = {"name": "cpu", "type": "cpu", "index": None, "model": None, "uuid": None, "capability": None,
              "requested": None}
#: What a record older than schema 5 ran under.
EAGER_RUNTIME = {"name": "eager", "options": {}, "info": {}, "artifact_key": None, "cached": None}


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """Bring a record of any readable schema to the current one (a new dict)."""
    out = dict(raw)
    version = out.get("schema")
    if version not in READABLE:
        raise ValueError(f"schema {version!r} is not one of {sorted(READABLE)}")
    if version == 1:  # no provenance yet: say so rather than invent it
        out.setdefault("run_config_hash", None)
        out.setdefault("fingerprint", {})
        out.setdefault("flops", {})
        version = 2
    if version == 2:  # windows had no host; Window.host defaults to "" (unknown)
        version = 3
    if version == 3:  # every run was on the CPU; no sweep, no cross-check, fp32 training
        out.setdefault("device", dict(CPU_DEVICE))
        version = 4
    if version == 4:  # every variant ran eager PyTorch
        out.setdefault("runtime", dict(EAGER_RUNTIME))
        version = 5
    if version == 5:  # no curves, no sweeps: the new fields default to None
        version = 6
    if version == 6:  # a sweep's tuning_J was the total over every trial of every seed
        sweep = out.get("sweep")
        if isinstance(sweep, dict) and "tuning_J" in sweep and "tuning_J_per_seed" not in sweep:
            trials, total = sweep.get("trials", []), sweep["tuning_J"]
            if not isinstance(trials, list) or not all(isinstance(t, dict) for t in trials):
                raise ValueError("sweep.trials is not a list of trials")
            if not isinstance(total, (int, float)) or isinstance(total, bool) or not 0 <= total < 1e300:
                raise ValueError(f"sweep.tuning_J is {total!r}, not a number of joules")
            seeds = len({str(t.get("seed")) for t in trials}) or 1
            out["sweep"] = {**sweep, "tuning_J_per_seed": sweep["tuning_J"] / seeds}
        version = 7
    if version == 7:  # no work counted: Inference.work defaults to None
        version = 8
    if version == 8:  # every creation was measured: Creation.source defaults to "measured"
        version = 9
    out["schema"] = version
    return out
