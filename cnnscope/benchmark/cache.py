"""The folder where measured ceilings are kept, and the rules for trusting what it holds.

A cache is data that anything may have written, in a folder anyone may have prepared:

- the folder must be this user's and not writable by others (unless it has the sticky
  bit, as ``/tmp`` has); otherwise one warning line, and the run measures without caching;
- a file is read only if it is a regular file of this user (``O_NOFOLLOW``: a link
  planted in the cache is never followed) and small; written only through
  ``fileio.replace_file`` (``mkstemp`` + rename: a planted link or file is replaced, its
  target never touched);
- every cached number is range-checked (``number``): the right type (a bool is not a
  number, a string is not either), finite, and between a lower and a generous upper
  physical bound; anything else is measured again.

The folder: ``$CNNSCOPE_CACHE_DIR``, else ``$XDG_CACHE_HOME/cnnscope``, else
``~/.cache/cnnscope``.
"""

from __future__ import annotations

import json
import math
import os
import stat
import sys
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cnnscope.fileio import read_regular, replace_file
from cnnscope.errors import CnnscopeError

MAX_FILE_BYTES = 1 << 20  # a cache file holds a few entries per device; more is not ours
_warned: set[str] = set()


def cache_dir() -> Path:
    """Where cnnscope keeps its caches (created on first write)."""
    explicit = os.environ.get("CNNSCOPE_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "cnnscope"


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` must not hold a cache, or None when it may."""
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        return None  # created private on first write
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if not stat.S_ISDIR(st.st_mode):
        return "is not a folder"
    if hasattr(os, "geteuid") and st.st_uid != os.geteuid():
        return f"belongs to another user (uid {st.st_uid})"
    if st.st_mode & stat.S_IWOTH and not st.st_mode & stat.S_ISVTX:
        return "is writable by every user (and has no sticky bit)"
    return None


def warn_once(folder: Path, problem: str) -> None:
    text = f"{str(folder)!r}".encode("ascii", "backslashreplace").decode("ascii")
    if text in _warned:
        return
    _warned.add(text)
    sys.stderr.write(f"cnnscope: warning: cache folder {text} {problem}: measuring without "
                     "caching (set CNNSCOPE_CACHE_DIR to a private folder)\n")


def usable(folder: Path) -> bool:
    """Whether ``folder`` may hold a cache; warns once (stderr) when it may not."""
    problem = folder_problem(folder)
    if problem is not None:
        warn_once(folder, problem)
        return False
    return True


def read_json(path: Path) -> dict:
    """The JSON object in ``path``, or {} when the file is absent, unsafe or damaged."""
    if not usable(path.parent):
        return {}
    data = read_regular(path, MAX_FILE_BYTES)
    if data is None:
        return {}
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def write_json(path: Path, data: dict) -> bool:
    """Write ``data`` to ``path`` safely; False (no error, no file) when it cannot be."""
    folder = path.parent
    if not usable(folder):
        return False
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if folder_problem(folder) is not None:  # e.g. created meanwhile by someone else
            return False
        text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n"
        replace_file(path, text.encode("utf-8"))
        return True
    except (OSError, ValueError, CnnscopeError):
        return False


def number(value: Any, low: float, high: float, *, integer: bool = False) -> float | int | None:
    """``value`` when it is a real number in [low, high] (an int where ``integer``), else
    None. Bools, strings, NaN and infinities are not numbers here."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if integer and not isinstance(value, int):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        ok = low <= value <= high
    except OverflowError:
        return None
    return value if ok else None


def text(value: Any, limit: int = 200) -> str | None:
    """``value`` when it is a short printable string, else None."""
    if isinstance(value, str) and len(value) <= limit and value.isprintable():
        return value
    return None


@dataclass(frozen=True)
class Provenance:
    """How a cached figure was measured: its spread, the load average then, and when."""

    spread: float
    load_average: float | None
    measured_at: str


def provenance(entry: dict, spread_limit: float) -> Provenance | None:
    """The provenance of a cached measurement that was stable and is well-formed (spread
    within ``spread_limit``, a plausible load average, an ISO time), else None: the
    checks every cached figure shares, whatever it measured."""
    spread = number(entry.get("spread"), 0.0, spread_limit)
    load = entry.get("load_average")
    if load is not None and number(load, 0.0, 1e5) is None:
        return None
    when = text(entry.get("measured_at"), 40)
    try:
        datetime.fromisoformat(when or "")
    except ValueError:
        return None
    if spread is None or entry.get("stable") is not True:
        return None
    return Provenance(float(spread), None if load is None else float(load), when)
