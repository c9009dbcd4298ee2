"""Variants made outside joulebench: a file the user gives by path (a safetensors state
dict, a Hugging Face folder, an ``.onnx`` file) instead of a recipe joulebench runs.

Such a variant is evaluated and measured like any other row, but what making it cost
was never measured: its creation energy is *unknown*, or the figure the user reports
(``creation_J``), labelled as reported. Never 0 J: the table's train J, lineage,
lifecycle and break-even are null for an unknown creation.

Files are read, never executed: pickles (``torch.save``, ``pytorch_model.bin``) are
refused by name and by content, since loading one runs arbitrary code. A leaf module:
the technique (compress/checkpoint.py) and the runtime (runtimes/ort.py) that take
paths both use it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError

#: File names that hold pickles: torch.save, pickle, joblib, numpy object arrays.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".joblib", ".npy", ".npz", ".tar")
#: The first bytes of a pickle stream (protocol 2+) and of torch.save's zip container.
PICKLE_MAGIC = (b"\x80", b"PK\x03\x04")
PICKLE_FIX = ("loading a pickle can execute code; save the weights with safetensors "
              "(safetensors.torch.save_file(model.state_dict(), 'model.safetensors'), or "
              "save_pretrained(folder, safe_serialization=True))")


@dataclass(frozen=True)
class MadeElsewhere:
    """How a variant made outside joulebench is known: the file it came from (and its
    digest, which identifies the artifact across seeds and runs), and the creation
    energy the user reports, if any (None: unknown)."""

    path: str
    sha256: str
    reported_j: float | None = None

    @property
    def source(self) -> str:
        return "reported" if self.reported_j is not None else "unknown"

    def note(self) -> str:
        return (f"made outside joulebench ({self.path}); creation energy "
                + (f"{self.reported_j:g} J as reported by the user, not measured" if self.reported_j is not None
                   else "unknown (not measured, not 0 J)"))


def existing(path: str, where: str, what: str) -> Path:
    """``path`` as a Path that exists, or one line naming what to give."""
    p = Path(path).expanduser()
    if not p.exists():
        raise UserError(f"{where}: {what} {path!r} not found (paths are relative to the directory joulebench runs "
                        "in); give an existing path")
    if not (p.is_file() or p.is_dir()):  # a FIFO or a device would block or never end
        raise UserError(f"{where}: {what} {path!r} is not a regular file or folder; give a file")
    return p


#: A safetensors header is a page of JSON; the format's own limit is 100 MB.
MAX_SAFETENSORS_HEADER = 100_000_000


def is_safetensors(path: Path) -> bool:
    """Whether ``path`` parses as safetensors: an 8-byte little-endian header length that
    fits the file, then that many bytes of JSON holding an object. Parsed, not sniffed:
    the first length byte is 0x80, a pickle's first byte, in about one valid file in 32."""
    import json

    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            if not 2 <= n <= min(size - 8, MAX_SAFETENSORS_HEADER):
                return False
            header = json.loads(fh.read(n).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return False
    return isinstance(header, dict)


def refuse_pickle(path: Path, where: str, parses: Any = None) -> None:
    """One line if ``path`` is (or, for a folder, holds only) a pickle. ``parses(path)``
    says whether the file is the format expected there (safetensors, ONNX): a file that
    parses is that format whatever its first byte; only one that does not is looked at
    for a pickle's signature, to name the problem."""
    if path.is_file():
        if path.suffix.lower() in PICKLE_SUFFIXES:
            raise UserError(f"{where}: {path} is a pickle-based file ({path.suffix}); {PICKLE_FIX}")
        if parses is not None and parses(path):
            return
        with open(path, "rb") as fh:
            head = fh.read(4)
        if any(head.startswith(m) for m in PICKLE_MAGIC):
            raise UserError(f"{where}: {path} holds a pickle (torch.save / pickle format, whatever its name); "
                            f"{PICKLE_FIX}")


_digests: dict[tuple, str] = {}


def sha256(path: Path, files: list[Path] | None = None) -> str:
    """Digest of a file, or of the named files of a folder (names and bytes): a changed
    file is another artifact. Read once per version of the files in a process (keyed by
    each file's path, size and modification time): a run asks for it at load, per seed
    and per step."""
    members = [path] if files is None else files
    key = (files is not None, *((str(Path(f).resolve()), s.st_size, s.st_mtime_ns)
                                for f in members for s in [os.stat(f)]))
    if key not in _digests:
        h = hashlib.sha256()
        for f in members:
            if files is not None:
                h.update(f.name.encode() + b"\0")
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        _digests[key] = h.hexdigest()
    return _digests[key]


def reported(value: Any) -> float | None:
    """``creation_J`` as given (validated by the params' type: a positive number), or None."""
    return float(value) if value is not None else None
