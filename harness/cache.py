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
  tampering, so a cache folder that others can write and you do not own is refused.

Writes are atomic and idempotent: a payload is written into a unique temporary folder
and renamed into place. When two processes (shards on a cluster) finish the same key,
the first rename wins and the second keeps the existing entry.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import stat
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model

from harness.errors import UserError
from harness.files import ensure_dir, file_sha256

#: Bump when the stored format changes. 2: safetensors weights + rebuild recipe (1 was
#: pickled modules, never read again).
ARTIFACT_VERSION = 2

#: The source that decides what a config trains into. Its hash is part of every key, so
#: a nightly comparing two commits retrains what a change to training, model,
#: compression, task or teacher-logit code could alter, and reuses everything else.
ARTIFACT_SOURCES = ("train.py", "workshop.py", "cache.py", "evaluate.py", "models", "compress", "tasks",
                    "runtimes")

MODULE = "module.safetensors"
TENSOR = "tensor.safetensors"
FILE = "artifact.bin"  # a runtime's file as it made it (an .onnx protobuf): bytes, never unpickled


def default_root() -> Path:
    return Path(os.environ.get("JOULEBENCH_CACHE") or Path.home() / ".cache" / "joulebench")


@functools.lru_cache(maxsize=None)
def code_digest() -> str:
    """The digest of this package's ARTIFACT_SOURCES (read once per process)."""
    return source_digest(Path(__file__).parent, ARTIFACT_SOURCES)


def source_digest(root: Path, sources: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for name in sources:
        path = root / name
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def untrusted(path: Path) -> str | None:
    """Why ``path`` cannot be trusted (others may write it and you do not own it), or None."""
    st = path.stat()
    writable_by_others = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    if writable_by_others and st.st_uid != os.geteuid():
        who = "everyone" if st.st_mode & stat.S_IWOTH else "its group"
        return f"{path} is writable by {who} and owned by uid {st.st_uid}, not you (uid {os.geteuid()})"
    return None


class ArtifactCache:
    def __init__(self, root: Path | None = None, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)):
        self.root = ensure_dir(Path(root) if root else default_root(), "artifact cache")
        why = untrusted(self.root)
        if why:
            raise UserError(f"refusing the artifact cache: {why}; another user could plant weights there. "
                            f"Use a folder you own (--cache-dir or JOULEBENCH_CACHE), or chmod go-w it")
        self.log = log
        self.hits: list[str] = []
        self.misses: list[str] = []

    def _dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    def _discard(self, d: Path, why: str) -> None:
        """Move a bad entry aside (atomic, so a concurrent reader sees it or nothing), then delete it."""
        self.log(f"joulebench: cache entry {d} is {why}; rebuilding it")
        aside = d.with_name(f"{d.name}.bad-{os.getpid()}-{id(self)}")
        try:
            os.rename(d, aside)
        except OSError:
            return  # another process moved or replaced it already
        shutil.rmtree(aside, ignore_errors=True)

    def _get(self, key: str, name: str) -> tuple[Path, dict[str, Any]] | None:
        d = self._dir(key)
        payload, meta_path = d / name, d / "meta.json"
        if not payload.is_file() or not meta_path.is_file():
            self.misses.append(key)
            return None
        why = untrusted(d)
        if why:
            self.log(f"joulebench: ignoring cache entry {d}: {why}")
            self.misses.append(key)
            return None
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            ok = isinstance(meta, dict) and meta.get("sha256") == file_sha256(payload)
        except (OSError, ValueError):
            ok = False
        if not ok:
            self._discard(d, "corrupt (sha256 mismatch)")
            self.misses.append(key)
            return None
        return payload, meta

    def _put(self, key: str, name: str, save: Callable[[Path], None], meta: dict[str, Any]) -> None:
        d = self._dir(key)
        d.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{key}.tmp-", dir=d.parent))
        try:
            save(tmp / name)
            meta = {**meta, "sha256": file_sha256(tmp / name), "artifact_version": ARTIFACT_VERSION}
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
            self._discard(payload.parent, f"unusable ({str(exc).splitlines()[0][:120]})")
            self.misses.append(key)
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
            self._discard(got[0].parent, f"unusable ({str(exc).splitlines()[0][:120]})")
            self.misses.append(key)
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
            self.misses.append(key)

    def get_file(self, key: str) -> tuple[bytes, dict[str, Any]] | None:
        """A runtime's stored file (its bytes, sha256-checked) and its meta, or None."""
        got = self._get(key, FILE)
        if got is None:
            return None
        self.hits.append(key)
        return got[0].read_bytes(), got[1]

    def put_file(self, key: str, data: bytes, meta: dict[str, Any]) -> None:
        self._put(key, FILE, lambda p: p.write_bytes(data), meta)
