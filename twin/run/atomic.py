"""Atomic file writes: a reader (or a crash) never sees a half-written result file.

Each write goes to a temporary file in the same folder, is flushed and fsync'ed, then renamed over the
target with :func:`os.replace` (atomic on POSIX within one file system). A failure (a full disk, a
read-only folder) leaves the target as it was, removes the temporary file and raises an ``OSError``
whose ``filename`` is the target, so every message names the file that could not be written.

For a last word when the disk is full (a manifest saying the run stopped), :func:`rewrite_in_place`
overwrites an existing small file in its own blocks, which needs no free space.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def _naming(exc: OSError, target: Path) -> OSError:
    """``exc`` with ``filename`` the target (not the temporary file, not missing)."""
    if exc.filename == str(target):
        return exc
    return type(exc)(exc.errno, exc.strerror or str(exc), str(target)) if exc.errno else OSError(
        errno.EIO, str(exc), str(target))


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; creates parent folders. Returns the path.

    Raises:
        OSError: the write failed (``filename`` is ``path``); ``path`` is unchanged.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as exc:
        raise _naming(exc, target) from None
    try:
        # mkstemp creates the file 0600; give it the usual permissions (0666 less the umask)
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            raise _naming(exc, target) from None
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_bytes(obj: Any) -> bytes:
    """``obj`` as indented, key-sorted JSON (stable bytes for equal objects), with a final newline."""
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode("utf-8")


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` as indented, key-sorted JSON atomically (stable bytes for equal objects)."""
    return atomic_write_bytes(path, json_bytes(obj))


def rewrite_in_place(path: str | os.PathLike[str], data: bytes) -> Path:
    """Overwrite the existing file ``path`` with ``data`` in place: the file keeps its blocks, so this
    works on a full disk when ``data`` fits in the blocks the file has (a small JSON file: one block).
    Not atomic: for a last word when :func:`atomic_write_bytes` cannot write (e.g. the manifest of a run
    that stops because the disk is full).

    Raises:
        OSError: ``path`` does not exist or cannot be written (``filename`` is ``path``).
    """
    target = Path(path)
    try:
        fd = os.open(target, os.O_WRONLY)
        try:
            os.pwrite(fd, data, 0)
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise _naming(exc, target) from None
    return target


__all__ = ["atomic_write_bytes", "atomic_write_json", "atomic_write_text", "json_bytes", "rewrite_in_place"]
