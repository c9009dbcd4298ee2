"""Content-addressed artifact cache: trained weights, teacher logits and runtime files
(exported .onnx), keyed by the
hash of everything that determines them, so a rerun of an unchanged suite retrains
nothing and a changed one retrains exactly what changed.

Layout: ``$JOULEBENCH_CACHE`` (default ``~/.cache/joulebench``) / ``ab/abcdef.../``
holding the payload and ``meta.json`` (its sha256, the creation windows as measured
originally, on which host, and when).

Nothing read from here executes code:
- Modules are stored as **weights only** (safetensors), never pickled. Loading builds the
  module's structure from the suite's config (a baseline) or from its rebuilt parent
  plus the technique's recorded structural edits (``Technique.rebuild``), then loads the
  weights into it with ``strict=True``: a tensor that does not fit is a corrupt entry.
- ``meta.json`` is JSON. The sha256 beside the payload catches corruption, not
  tampering. Against tampering:
  * a cache root that others can write is refused unless it is sticky (``/tmp``-like:
    no one may rename or delete another user's entries);
  * every entry, and every folder and file in it, must be yours, no symbolic link, and
    writable by no one else; and it must carry a MAC, HMAC-SHA256 over its cache key and
    its meta (the payload's sha256, the creation windows) under a secret only you can read (``.secret`` in the cache
    root, 0600). An entry planted by anyone else, or copied in, fails one of these: it
    is ignored and rebuilt, and the log says why.

Writes are atomic and idempotent: a payload is written into a unique temporary folder
and renamed into place. When two processes (shards on a cluster) finish the same key,
the first rename wins and the second keeps the existing entry.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from harness.errors import UserError
from harness.cache_trust import not_yours, secret, untrusted
from harness.files import ensure_dir, file_sha256, source_digest

#: Bump when the stored format changes. 2: safetensors weights + rebuild recipe (1 was
#: pickled modules, never read again).
ARTIFACT_VERSION = 2

#: The source that decides what a config trains into. Its hash is part of every key, so
#: a nightly comparing two commits retrains what a change to training, model,
#: compression, task or teacher-logit code could alter, and reuses everything else.
ARTIFACT_SOURCES = ("train.py", "workshop.py", "lineage.py", "selection.py", "deploy.py", "cache.py", "evaluate.py",
                    "models", "compress", "tasks", "runtimes")

MODULE = "module.safetensors"
TENSOR = "tensor.safetensors"
FILE = "artifact.bin"  # a runtime's file as it made it (an .onnx protobuf): bytes, never unpickled
COUNTS = "counts.json"  # numbers counted on an artifact (its FLOPs): JSON, read as numbers only
#: What each kind of entry's meta must hold, beside its sha256 and mac: an entry without
#: one of these (or with a window that is not one) is corrupt and rebuilt, never a KeyError.
REQUIRED = {MODULE: {"info": dict, "windows": dict, "measured_at": str}, TENSOR: {"window": dict},
            FILE: {"window": dict}, COUNTS: {"counted_at": str}}


def meta_problem(name: str, meta: dict[str, Any]) -> str | None:
    """Why ``meta`` cannot stand for an entry of kind ``name``, or None."""
    from harness.meters.base import Measurement

    for field, kind in REQUIRED[name].items():
        if not isinstance(meta.get(field), kind):
            return f"its meta has no {field}"
    if name == COUNTS:  # no creation window: a count is not a measurement
        return None
    try:
        for window in [meta["window"]] if "window" in meta else meta["windows"].values():
            m = Measurement.from_dict(window)
            if not m.duration_s > 0 or any(not c.energy_j > 0 for c in m.components):
                return "its meta holds a window with no duration or energy"
    except (KeyError, TypeError, ValueError, AttributeError):
        return "its meta holds a window that is not one"
    return None


def default_root() -> Path:
    return Path(os.environ.get("JOULEBENCH_CACHE") or Path.home() / ".cache" / "joulebench")


@functools.lru_cache(maxsize=None)
def code_digest() -> str:
    """The digest of this package's ARTIFACT_SOURCES (read once per process)."""
    return source_digest(Path(__file__).parent, ARTIFACT_SOURCES)


class ArtifactCache:
    def __init__(self, root: Path | None = None, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
                 on_miss: Callable[[str, str], None] | None = None):
        """``on_miss(key, why)`` is told of every miss and may raise instead of letting the
        caller rebuild (the counting process, which counts what the energy phase made)."""
        self.root = ensure_dir(Path(root) if root else default_root(), "artifact cache")
        why = untrusted(self.root)
        if why:
            raise UserError(f"refusing the artifact cache: {why}; another user could plant weights there. "
                            f"Use a folder you own (--cache-dir or JOULEBENCH_CACHE), or chmod go-w it")
        self._secret = secret(self.root)
        self.log = log
        self.on_miss = on_miss
        self.hits: list[str] = []
        self.misses: list[str] = []

    def _dir(self, key: str) -> Path:
        if not all(c in "0123456789abcdef" for c in key) or len(key) < 16:  # keys are hex digests: no path
            raise ValueError(f"not a cache key: {key!r}")
        return self.root / key[:2] / key

    def _missed(self, key: str, why: str) -> None:
        self.misses.append(key)
        if self.on_miss is not None:
            self.on_miss(key, why)

    def _discard(self, d: Path, why: str) -> None:
        """Move a bad entry aside (atomic, so a concurrent reader sees it or nothing), then delete it."""
        self.log(f"joulebench: cache entry {d} is {why}; rebuilding it")
        aside = d.with_name(f"{d.name}.bad-{os.getpid()}-{id(self)}")
        try:
            os.rename(d, aside)
        except OSError:
            return  # another process moved or replaced it already
        shutil.rmtree(aside, ignore_errors=True)

    def sign(self, key: str, meta: dict[str, Any]) -> str:
        """HMAC-SHA256 under this cache's secret of the cache key and the entry's meta
        (its payload's sha256 and the creation windows it vouches for), ``mac`` aside."""
        body = json.dumps({k: v for k, v in meta.items() if k != "mac"}, sort_keys=True, default=str)
        return hmac.new(self._secret, f"{key}\0{body}".encode(), hashlib.sha256).hexdigest()

    def _get(self, key: str, name: str, tally: bool = True) -> tuple[Path, dict[str, Any]] | None:
        """The entry's payload path and meta, checked; ``tally=False``: a miss is not an
        artifact's miss (a count kept beside the artifacts)."""
        missed = self._missed if tally else (lambda key, why: None)
        d = self._dir(key)
        payload, meta_path = d / name, d / "meta.json"
        if not os.path.lexists(payload) or not os.path.lexists(meta_path):
            missed(key, "not in the cache")
            return None
        why = next(filter(None, (not_yours(p) for p in (d.parent, d, payload, meta_path))), None)
        if why:
            self.log(f"joulebench: ignoring cache entry {d} and rebuilding it: {why}")
            missed(key, why)
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            sha = file_sha256(payload)
            ok = isinstance(meta, dict) and meta.get("sha256") == sha
            signed = ok and hmac.compare_digest(str(meta.get("mac", "")), self.sign(key, meta))
        except (OSError, ValueError, RecursionError):
            ok = signed = False
        if not ok:
            self._discard(d, "corrupt (sha256 mismatch)")
            missed(key, "its entry was corrupt (sha256 mismatch)")
            return None
        if not signed:
            self._discard(d, "not signed by this cache's secret (planted, copied in, or made by an older joulebench)")
            missed(key, "its entry was not signed by this cache's secret")
            return None
        why = meta_problem(name, meta)
        if why:
            self._discard(d, f"corrupt ({why})")
            missed(key, f"its entry was corrupt ({why})")
            return None
        return payload, meta

    def _put(self, key: str, name: str, save: Callable[[Path], None], meta: dict[str, Any]) -> None:
        d = self._dir(key)
        try:
            d.parent.mkdir(parents=True, exist_ok=True)
            why = not_yours(d.parent)
            if why:
                raise PermissionError(why)
            tmp = Path(tempfile.mkdtemp(prefix=f"{key}.tmp-", dir=d.parent))
        except OSError as exc:  # a folder someone else made: the result is used, not stored
            self.log(f"joulebench: not storing {key[:12]} in the cache ({exc}); it will be made again next time")
            return
        try:
            save(tmp / name)
            meta = json.loads(json.dumps({**meta, "sha256": file_sha256(tmp / name),
                                          "artifact_version": ARTIFACT_VERSION}, default=str))  # as read back
            meta["mac"] = self.sign(key, meta)
            (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
            os.chmod(tmp, 0o755)  # mkdtemp makes 0700; readable like any cache folder
            try:
                os.rename(tmp, d)  # an entry appears whole or not at all
            except OSError:
                if not d.is_dir():
                    raise
                # another process finished the same key first: keep its entry
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def get_module(self, key: str, skeleton: Callable[[dict[str, Any]], torch.nn.Module]
                   ) -> tuple[torch.nn.Module, dict[str, Any]] | None:
        """The cached module: ``skeleton(meta)`` builds its structure, the stored weights
        are loaded into it (strictly). None on a miss or a bad entry."""
        got = self._get(key, MODULE)
        if got is None:
            return None
        payload, meta = got
        module = skeleton(meta)
        try:
            missing, unexpected = load_model(module, str(payload), strict=True)
        except (SafetensorError, RuntimeError, OSError, ValueError) as exc:  # not weights of this structure
            why = f"unusable ({str(exc).splitlines()[0][:120]})"
            self._discard(payload.parent, why)
            self._missed(key, f"its entry was {why}")
            return None
        module.eval()
        self.hits.append(key)
        return module, meta

    def put_module(self, key: str, module: torch.nn.Module, meta: dict[str, Any]) -> None:
        self._put(key, MODULE, lambda p: save_model(module, str(p)), meta)

    def get_tensor(self, key: str) -> tuple[torch.Tensor, dict[str, Any]] | None:
        got = self._get(key, TENSOR)
        if got is None:
            return None
        try:
            tensor = load_file(str(got[0]))["t"]
        except (SafetensorError, OSError, KeyError, ValueError) as exc:
            why = f"unusable ({str(exc).splitlines()[0][:120]})"
            self._discard(got[0].parent, why)
            self._missed(key, f"its entry was {why}")
            return None
        self.hits.append(key)
        return tensor, got[1]

    def put_tensor(self, key: str, tensor: torch.Tensor, meta: dict[str, Any]) -> None:
        self._put(key, TENSOR, lambda p: save_file({"t": tensor.contiguous()}, str(p)), meta)

    def discard(self, key: str, why: str) -> None:
        """Set aside an entry that read back whole but cannot be used (a file its runtime
        refuses), so the next put rebuilds it."""
        d = self._dir(key)
        if d.is_dir():
            self._discard(d, why)
        if key in self.hits:  # it was read, but not used: a miss
            self.hits.remove(key)
            self._missed(key, f"its entry was {why}")

    def get_file(self, key: str) -> tuple[bytes, dict[str, Any]] | None:
        """A runtime's stored file (its bytes, sha256-checked) and its meta, or None."""
        got = self._get(key, FILE)
        if got is None:
            return None
        self.hits.append(key)
        return got[0].read_bytes(), got[1]

    def put_file(self, key: str, data: bytes, meta: dict[str, Any]) -> None:
        self._put(key, FILE, lambda p: p.write_bytes(data), meta)

    def get_counts(self, key: str) -> dict[str, float] | None:
        """Numbers counted on an artifact (not an artifact: neither a hit nor a miss), or None."""
        got = self._get(key, COUNTS, tally=False)
        if got is None:
            return None
        try:
            values = json.loads(got[0].read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            return None
        if not isinstance(values, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   for v in values.values()):
            return None
        return {str(k): float(v) for k, v in values.items()}

    def put_counts(self, key: str, values: dict[str, float]) -> None:
        from harness.environment import now

        self._put(key, COUNTS, lambda p: p.write_text(json.dumps(values)), {"counted_at": now()})
