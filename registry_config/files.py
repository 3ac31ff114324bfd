"""Writing a file so that a reader sees the old content or the new, never half of either.

An operator's ``/etc/docker/daemon.json`` that a full disk leaves as broken
JSON stops dockerd from starting; a credentials file left world-readable leaks
a password. :func:`write_atomically` writes to a temporary file in the same
directory, flushes and ``fsync``\\ s it, gives it the old file's mode and owner,
and renames it over the old one (through a symlink, onto its target). On any
failure the temporary file is removed and the old file is untouched.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

__all__ = ["PRIVATE_MODE", "write_atomically"]

PRIVATE_MODE = 0o600
"""The mode of a new credentials file, and the widest one an existing credentials file keeps."""


def write_atomically(path: str | os.PathLike[str], data: str | bytes, *, private: bool = False) -> Path:
    """Replace the file at ``path`` with ``data`` atomically; return the path written (a symlink's target).

    ``str`` data is encoded as UTF-8 (strictly: a lone surrogate is a
    ``UnicodeEncodeError`` before anything is written). A new file gets the
    mode ``0o666`` less the umask, or :data:`PRIVATE_MODE` when ``private``;
    an existing file keeps its mode (narrowed to at most ``0o600`` when
    ``private``) and, where the process may set it, its owner and group. The
    directory is ``fsync``\\ ed after the rename, so the new name survives a
    crash. Raises ``OSError`` (or ``UnicodeEncodeError``) with the old file
    intact.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else bytes(data)
    target = Path(os.path.realpath(path))
    try:
        old = target.stat()
    except FileNotFoundError:
        old = None
    if old is not None and not stat.S_ISREG(old.st_mode):
        raise IsADirectoryError(f"{target} exists and is not a regular file")
    if old is not None:
        mode = stat.S_IMODE(old.st_mode)
        if private:
            mode &= PRIVATE_MODE
    elif private:
        mode = PRIVATE_MODE
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            os.fchmod(stream.fileno(), mode)
            if old is not None and hasattr(os, "fchown"):
                with contextlib.suppress(PermissionError):
                    os.fchown(stream.fileno(), old.st_uid, old.st_gid)
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_directory(target.parent)
    return target


def _sync_directory(directory: Path) -> None:
    """``fsync`` a directory so a rename in it is durable; a platform that cannot is not an error."""
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(descriptor)
    finally:
        os.close(descriptor)
