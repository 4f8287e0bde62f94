"""Writing output: files that are whole or absent, and special files written through.

``-o PATH`` follows what every Unix tool does with ``> PATH``, plus atomicity:

- a new path or a regular file (also through a symlink, which is kept) is written via a
  temporary file in the target's folder and a rename, so a reader never sees half a
  report and a failure leaves the old file as it was;
- anything else (a character or block device such as ``/dev/null``, a FIFO, a terminal,
  ``/dev/stdout`` or a symlink to ``/proc/self/fd/1``) is opened and written through,
  never replaced: renaming over ``/dev/null`` would replace the machine's null device;
- a folder (``out/`` or an existing directory) is refused: a file named like the folder
  is never what the user meant.

Every failure is a ``UserFileError``, one line naming the path and the reason, with the
temporary file removed. JSON is strict: ``strict_json`` never writes NaN or Infinity.
"""

from __future__ import annotations

import errno
import json
import math
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from cnnscope.errors import UserFileError

# Symlinks whose target is one of these stand for an open file of a process, not a path
# that a rename could safely replace (``/dev/stdout`` -> ``/proc/self/fd/1``).
_MAGIC_PREFIXES = ("/proc/", "/dev/fd/", "/dev/std")

_REASONS = {
    errno.EACCES: ("permission denied", "pick a folder you can write to"),
    errno.EPERM: ("operation not permitted", "pick a folder you can write to"),
    errno.EROFS: ("read-only file system", "pick a writable folder"),
    errno.ENOSPC: ("no space left on device", "free some space or pick another disk"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or pick another disk"),
    errno.EFBIG: ("file too large (a file-size limit, ulimit -f?)", "raise the limit or write less"),
    errno.ENAMETOOLONG: ("file name too long", "pick a shorter name"),
    errno.ENOTDIR: ("a part of the path is not a folder", "check the path"),
    errno.ELOOP: ("too many levels of symbolic links", "check the path"),
    errno.ENXIO: ("no reader on the other side (a socket or a FIFO without reader)",
                  "write to a regular file"),
    errno.EISDIR: ("it is a folder", "give a file name to -o"),
}


def write_error(path: str | os.PathLike, exc: OSError, verb: str = "cannot write") -> UserFileError:
    """One line for a failed write: what, where, why, and what to do."""
    reason, hint = _REASONS.get(exc.errno or 0, (exc.strerror or str(exc), "pick another -o path"))
    return UserFileError(f"{verb} {str(path)!r}: {reason}", hint)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path``: atomically for files, through for devices."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` (see the module docstring for what each kind of path gets)."""
    text = os.fspath(path)
    if not text:
        raise UserFileError("empty output path", "give a file name to -o")
    if text.endswith(("/", os.sep)):
        raise UserFileError(f"{text!r} names a folder", "give a file name to -o, e.g. out/report.json")
    target = Path(text)
    try:
        st = os.stat(target)  # follows symlinks: what would a write reach?
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise write_error(text, exc) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UserFileError(f"{text!r} is a folder", "give a file name to -o, e.g. out/report.json")
    if _through_magic_link(target):
        # An open file of this process (/dev/stdout, /proc/self/fd/1): append, as the
        # shell's `>>` may have opened it; truncating would erase what it already holds.
        _write_through(text, data, os.O_APPEND)
        return target
    if st is not None and not stat.S_ISREG(st.st_mode):
        _write_through(text, data, os.O_TRUNC)
        return target
    # A regular file or a new name: replace the link's target, never the link itself.
    real = Path(os.path.realpath(target)) if target.is_symlink() else target
    _replace_atomically(real, data, shown=text, mode=None if st is None else st.st_mode)
    return target


def _through_magic_link(path: Path) -> bool:
    """True when ``path``, or a symlink hop from it, is under /proc, /dev/fd or /dev/std*."""
    current = os.path.abspath(path)
    for _ in range(40):
        if current.startswith(_MAGIC_PREFIXES):
            return True
        if not os.path.islink(current):
            return False
        current = os.path.abspath(os.path.join(os.path.dirname(current), os.readlink(current)))
    return False


def _write_through(shown: str, data: bytes, mode_flag: int) -> None:
    """Open and write a device, FIFO or process file, as ``> PATH`` does: never replace it."""
    try:
        fd = os.open(shown, os.O_WRONLY | os.O_CREAT | mode_flag | getattr(os, "O_CLOEXEC", 0),
                     0o666)
    except OSError as exc:
        raise write_error(shown, exc) from None
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError as exc:
        raise write_error(shown, exc) from None
    finally:
        os.close(fd)


def _replace_atomically(target: Path, data: bytes, *, shown: str, mode: int | None) -> None:
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        what = "is not a folder" if folder.exists() else "does not exist"
        raise UserFileError(f"folder {str(folder)!r} {what}", "create it first or pick another -o path")
    tmp = None
    try:
        # A short fixed prefix: the temporary name must not exceed NAME_MAX where the
        # target's own (long but legal) name does not.
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".cnnscope-", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        if mode is not None:  # an existing report keeps its permissions
            os.chmod(tmp, stat.S_IMODE(mode))
        else:  # mkstemp creates 0600; give the report what a plain open() would
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise write_error(shown, exc) from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


# ---------------------------------------------------------------------- strict JSON


def finite_or_none(value: Any) -> Any:
    """``value`` with every float that is NaN or infinite replaced by None (recursively)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def strict_json(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` that never writes NaN or Infinity (they become null): strict JSON."""
    return json.dumps(finite_or_none(value), allow_nan=False, **kwargs)


# ---------------------------------------------------------------------- two names, one file


def same_file(a: str, b: str) -> bool:
    """Whether paths ``a`` and ``b`` lead to one file (a file need not exist yet): the same
    name after symlinks and ``..``, or two hard links to one inode."""
    try:
        return os.path.realpath(a) == os.path.realpath(b) or os.path.samefile(a, b)
    except (OSError, ValueError):  # a missing file, a NUL in the name
        return False


# ---------------------------------------------------------------------- private files


def replace_file(path: str | os.PathLike, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with a regular file holding ``data``, never following a link.

    For files cnnscope owns (its caches), unlike ``-o``: the data goes to a ``mkstemp``
    file in the same folder (``O_CREAT | O_EXCL``, an unguessable name, so nothing planted
    is opened) and is renamed over ``path``; a rename replaces a link at ``path`` itself,
    never its target. Raises ``UserFileError`` with the temporary file removed.
    """
    target = Path(path)
    _replace_atomically(target, data, shown=str(target), mode=mode)


def read_regular(path: str | os.PathLike, limit: int) -> bytes | None:
    """The bytes of ``path`` if it is a regular file owned by this user and at most
    ``limit`` bytes; None for anything else (a link, a FIFO, a device, a folder, someone
    else's file, a missing one). Opened with ``O_NOFOLLOW | O_NONBLOCK``: a link is never
    followed and a FIFO never blocks the open."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
        | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        owner_ok = not hasattr(os, "geteuid") or st.st_uid == os.geteuid()
        if not stat.S_ISREG(st.st_mode) or not owner_ok or st.st_size > limit:
            return None
        chunks, left = [], limit + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
        return data if len(data) <= limit else None
    except OSError:
        return None
    finally:
        os.close(fd)
