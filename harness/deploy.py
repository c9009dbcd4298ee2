"""A made variant deployed under its runtime: eager as it is; an export, a quantization by
the runtime or a compile as creation work in its own window; a runtime's file from the
cache where an identical one was made before (charged with the window measured then),
or the user's own file (made outside joulebench: nothing measured, nothing cached)."""

from __future__ import annotations

from typing import Callable

import torch

from harness import cache as cache_mod
from harness import preloads, runtimes
from harness.cache import ArtifactCache
from harness.device import Device
from harness.environment import now
from harness.errors import VariantSkipped
from harness.files import digest
from harness.lineage import performed
from harness.made import Deployed, Made
from harness.meters import EnergyMonitor, Measurement
from harness.runtimes import DeployContext


def deploy(made: Made, batch_sizes: tuple[int, ...], cache: ArtifactCache | None, monitor: EnergyMonitor,
           device: Device, log: Callable[[str], None]) -> Deployed:
    """The variant under its runtime. Exporting, quantizing or compiling is creation
    work in its own window; a runtime's file (an .onnx) comes from the cache when an
    identical one was made before, charged with the window measured then."""
    spec = made.spec
    runtime = runtimes.create(spec.runtime)
    why = runtime.unavailable(device)
    if why:
        raise VariantSkipped(why)
    # eager under a technique: the module as it is, nothing to prepare (a variant that is its
    # parent run by such a runtime still gets its deploying window: its whole creation)
    if not runtime.creation_work and not made.borrowed:
        return Deployed(runtime, runtime.deploy(DeployContext(spec.variant_id, made.built.runs, None, [], False)),
                        None)
    data = made.eval_data
    shapes: dict[tuple, dict[str, torch.Tensor]] = {}
    for size in batch_sizes:
        for idx in data.buckets(size):
            batch = data.batch(idx)
            shapes.setdefault(tuple(tuple(v.shape) for v in batch.values()), batch)
    ctx = DeployContext(spec.variant_id, made.built.runs, performed(spec, runtime), list(shapes.values()),
                        data.lengths is not None, device, torch.get_num_threads(), log)
    given = runtime.given()
    if given is not None:  # the user's own file: nothing made here, nothing measured, nothing cached
        log(f"  loading {spec.key} from {given.path} ({runtime.name}; made outside joulebench)")
        return Deployed(runtime, runtime.deploy(ctx), None, None, given.sha256, elsewhere=given)
    key = digest({"artifact_version": cache_mod.ARTIFACT_VERSION, "module": made.key, "request": ctx.request,
                  **runtime.key_fields()}) if runtime.cacheable else ""
    got = cache.get_file(key) if cache is not None and key else None
    if got is not None:
        artifact, meta = got
        try:
            deployment = runtime.deploy(ctx, artifact)
            window = Measurement.from_dict(meta["window"])
        except (VariantSkipped, KeyError, TypeError, ValueError) as why:  # the runtime refuses the file
            cache.discard(key, f"unusable ({str(why)[:120]})")
        else:
            log(f"  cached: {runtime.name} artifact of {spec.key} (made {meta.get('measured_at', '?')} on "
                     f"{window.host or 'an unknown host'}; its creation energy is the one measured then)")
            return Deployed(runtime, deployment, window,
                            {"measured_at": meta.get("measured_at"), "host": window.host, "key": key}, key)
    log(f"  deploying {spec.key} on {runtime.name}")
    preloads.before_deploying(runtime, device, log)
    with monitor.creation_window(f"{spec.key}:{runtime.name}") as out:
        deployment = runtime.deploy(ctx)
    if cache is not None and runtime.cacheable and deployment.artifact is not None:
        cache.put_file(key, deployment.artifact, {"variant": spec.key, "runtime": runtime.name,
                                                       "measured_at": now(), "window": out[0].to_dict()})
    return Deployed(runtime, deployment, out[0], None, key)
