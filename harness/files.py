"""Reading and writing files safely, and hashing what we write: one implementation each.

- ``write_atomic``: write beside, then rename, so a reader never sees half a file and an
  old file is never lost to a crash mid-write; ``open_nofollow`` for the files appended
  to, truncated or locked in place. Neither follows a symbolic link at the last
  component: a link where joulebench keeps a file is refused in one line
  (``refuse_links_in`` checks a whole run directory before anything is written).
- ``ensure_dir`` / ``read_text``: every path the CLI writes or reads goes through these,
  so a file where a folder should be, a folder that cannot be created or a file that is
  not UTF-8 text is one line naming the path and the fix (a UserError), not a traceback.
- ``digest``: the one JSON-config hash (suite config, run config, cache keys).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from harness.errors import UserError


def digest(payload: Any, length: int | None = None) -> str:
    """sha256 of the canonical JSON of ``payload`` (keys sorted), optionally shortened."""
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def refuse_symlink(path: Path, what: str = "file") -> None:
    """One line if ``path`` is a symbolic link (dangling or not): nothing joulebench
    writes follows one out of its folder."""
    if os.path.islink(path):
        raise UserError(f"{what} {path} is a symbolic link (to {os.readlink(path)}); joulebench writes no file "
                        "through a link: remove the link, or pass another folder")


def open_nofollow(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a symbolic link at the last component (O_NOFOLLOW): the
    one way joulebench opens a file it appends to, truncates or locks."""
    refuse_symlink(path)
    try:
        return os.open(path, flags | os.O_NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a link appeared after the check
            raise UserError(f"file {path} is a symbolic link; joulebench writes no file through a link") from None
        raise


def refuse_links_in(folder: Path, names: tuple[str, ...], what: str = "run directory") -> None:
    """One line if any of ``names`` inside ``folder`` is a symbolic link where joulebench
    keeps a file of its own."""
    for name in names:
        if os.path.islink(Path(folder) / name):
            raise UserError(f"{what} {folder} holds a symbolic link where its {name} belongs "
                            f"(to {os.readlink(Path(folder) / name)}); remove it, or pass another folder")


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write(tmp)`` a unique file beside ``path``, then rename it over ``path``. A
    symbolic link at ``path`` is refused (one line), never replaced or followed."""
    refuse_symlink(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        mask = os.umask(0)  # mkstemp makes 0600; give the file the mode a plain write would
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomic(path, lambda p: p.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n"))


def ensure_dir(path: Path, what: str) -> Path:
    """Create ``path`` (and parents) or say in one line why it cannot be a folder."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"{what} {path} is an existing file, not a folder; pass a folder path")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"{what} {path} cannot be created: a parent of it is a file; pass another path") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be created ({exc.strerror}); pass a path you can write") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path} is not writable; pass a path you can write")
    return path


def check_creatable(path: Path, what: str) -> None:
    """Fail now, creating nothing, if ``path`` could not become a writable folder."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise UserError(f"{what} {path} is an existing file, not a folder; pass a folder path")
        if not os.access(path, os.W_OK | os.X_OK):
            raise UserError(f"{what} {path} is not writable; pass a path you can write")
        return
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{what} {path} cannot be created: {parent} is a file; pass another path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{what} {path} cannot be created: {parent} is not writable; pass a path you can write")


def read_text(path: Path, what: str) -> str:
    """The whole file as UTF-8 text, or one line saying why not."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"{what} {path} not found") from None
    except IsADirectoryError:
        raise UserError(f"{what} {path} is a folder, not a file") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"{what} {path} is not UTF-8 text (byte {exc.start}); pass the file joulebench wrote") from None
    except OSError as exc:
        raise UserError(f"{what} {path} cannot be read ({exc.strerror})") from None


#: The largest JSON file joulebench reads back whole (an environment, a cache meta).
MAX_JSON_BYTES = 16 << 20


def read_json(path: Path, what: str) -> Any:
    """A JSON file joulebench wrote, read back with limits: over MAX_JSON_BYTES, nested
    too deeply or not JSON is one line naming the file."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        size = 0  # read_text names the problem
    if size > MAX_JSON_BYTES:
        raise UserError(f"{what} {path} is {size:,} bytes, over the {MAX_JSON_BYTES:,} joulebench reads; restore it "
                        "from the run")
    text = read_text(path, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(f"{what} {path} is not valid JSON (line {exc.lineno}); restore it from the run") from None
    except RecursionError:
        raise UserError(f"{what} {path} is nested too deeply to be one joulebench wrote; restore it from the run") from None


def source_digest(root: Path, sources: tuple[str, ...]) -> str:
    """A digest of the Python sources ``sources`` (files or folders) under ``root``: names
    and bytes, so a changed line of that code is another digest."""
    h = hashlib.sha256()
    for name in sources:
        path = root / name
        for f in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]
