"""Content-addressed artifact cache: trained modules and teacher logits, keyed by the
hash of everything that determines them, so a rerun of an unchanged suite retrains
nothing and a changed one retrains exactly what changed.

Layout: ``$JOULEBENCH_CACHE`` (default ``~/.cache/joulebench``) / ``ab/abcdef.../``
holding the payload file and ``meta.json`` (its sha256, the creation windows as measured
originally, and when). A payload whose sha256 does not match is reported, deleted and
rebuilt. Modules are stored whole with ``torch.save`` (pruned and quantized
architectures cannot be rebuilt from a config alone); load them only from a cache you
trust. Logits are stored as safetensors.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any, Callable

import torch

#: Bump when the stored format changes.
ARTIFACT_VERSION = 1

#: The source that decides what a config trains into. Its hash is part of every key, so
#: a nightly comparing two commits retrains what a change to training, model,
#: compression or task code could alter, and reuses everything else.
ARTIFACT_SOURCES = ("train.py", "workshop.py", "cache.py", "models", "compress", "tasks")


def default_root() -> Path:
    return Path(os.environ.get("JOULEBENCH_CACHE") or Path.home() / ".cache" / "joulebench")


def digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


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


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class ArtifactCache:
    def __init__(self, root: Path | None = None, log: Callable[[str], None] = lambda s: print(s, file=sys.stderr)):
        self.root = Path(root) if root else default_root()
        self.log = log
        self.hits: list[str] = []
        self.misses: list[str] = []

    def _dir(self, key: str) -> Path:
        return self.root / key[:2] / key

    def _get(self, key: str, name: str) -> tuple[Path, dict[str, Any]] | None:
        d = self._dir(key)
        payload, meta_path = d / name, d / "meta.json"
        if not payload.is_file() or not meta_path.is_file():
            self.misses.append(key)
            return None
        try:
            meta = json.loads(meta_path.read_text())
            ok = meta.get("sha256") == file_sha256(payload)
        except (OSError, ValueError):
            ok = False
        if not ok:
            self.log(f"joulebench: cache entry {d} is corrupt (sha256 mismatch); rebuilding it")
            shutil.rmtree(d, ignore_errors=True)
            self.misses.append(key)
            return None
        self.hits.append(key)
        return payload, meta

    def _put(self, key: str, name: str, save: Callable[[Path], None], meta: dict[str, Any]) -> None:
        d = self._dir(key)
        tmp = d.with_name(d.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save(tmp / name)
        meta = {**meta, "sha256": file_sha256(tmp / name), "artifact_version": ARTIFACT_VERSION}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        shutil.rmtree(d, ignore_errors=True)
        os.replace(tmp, d)  # an entry appears whole or not at all

    def get_module(self, key: str) -> tuple[torch.nn.Module, dict[str, Any]] | None:
        got = self._get(key, "module.pt")
        if got is None:
            return None
        module = torch.load(got[0], weights_only=False)  # our own, hash-checked file
        module.eval()
        return module, got[1]

    def put_module(self, key: str, module: torch.nn.Module, meta: dict[str, Any]) -> None:
        self._put(key, "module.pt", lambda p: torch.save(module, p), meta)

    def get_tensor(self, key: str) -> torch.Tensor | None:
        from safetensors.torch import load_file

        got = self._get(key, "tensor.safetensors")
        return None if got is None else load_file(got[0])["t"]

    def put_tensor(self, key: str, tensor: torch.Tensor, meta: dict[str, Any]) -> None:
        from safetensors.torch import save_file

        self._put(key, "tensor.safetensors", lambda p: save_file({"t": tensor.contiguous()}, str(p)), meta)
