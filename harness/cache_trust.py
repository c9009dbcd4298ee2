"""Whether an artifact cache can be trusted: its root (not writable by others unless
sticky and yours), every entry in it (yours, no link, not writable by others), and the
MAC key its entries are signed with (``.secret``, 0600)."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from harness.errors import UserError


def untrusted(path: Path) -> str | None:
    """Why ``path`` (a cache root) cannot be trusted, or None: others can write it and it
    is not sticky, or another user owns it and others can write it."""
    st = path.stat()
    writable_by_others = st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)
    who = "everyone" if st.st_mode & stat.S_IWOTH else "its group"
    if writable_by_others and st.st_uid != os.geteuid():
        return f"{path} is writable by {who} and owned by uid {st.st_uid}, not you (uid {os.geteuid()})"
    if writable_by_others and not st.st_mode & stat.S_ISVTX:
        return f"{path} is writable by {who} and not sticky, so others can replace your entries"
    return None


def not_yours(path: Path) -> str | None:
    """Why a file or folder inside the cache is not trustworthy, or None: a symbolic
    link, owned by someone else, or writable by others."""
    try:
        st = os.lstat(path)
    except OSError as exc:
        return f"{path} cannot be examined ({exc.strerror})"
    if stat.S_ISLNK(st.st_mode):
        return f"{path} is a symbolic link"
    if st.st_uid != os.geteuid():
        return f"{path} is owned by uid {st.st_uid}, not you (uid {os.geteuid()})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"{path} is writable by others"
    return None


SECRET = ".secret"


def secret(root: Path) -> bytes:
    """The cache's MAC key: 32 random bytes in ``root/.secret``, created 0600 on first use;
    one that is not yours, is a link, or others can read is refused in one line."""
    path = root / SECRET
    if not os.path.lexists(path):  # written aside, then linked into place: never seen half-written
        fd, tmp = tempfile.mkstemp(dir=root, prefix=".secret-")  # 0600
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(32))
            try:
                os.link(tmp, path)
            except FileExistsError:  # another process published one first: use it
                pass
        finally:
            os.unlink(tmp)
    why = not_yours(path)
    if why is None and os.lstat(path).st_mode & 0o077:
        why = f"{path} can be read by others"
    if why:
        raise UserError(f"refusing the artifact cache: its secret {why}; use a cache folder you own "
                        "(--cache-dir or JOULEBENCH_CACHE)")
    data = path.read_bytes()
    if len(data) != 32:
        raise UserError(f"refusing the artifact cache: {path} is not a joulebench cache secret; remove it "
                        "(its entries will be rebuilt) or use another cache folder")
    return data
