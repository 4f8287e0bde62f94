"""Which model specs a lock file may name: ``allowed_spec``, the gate's policy.

A lock file is data and may come from a pull request: it never makes cnnscope import or
run code on its own say-so (see ``cnnscope.analysis.lock_schema`` for the whole policy).
Zoo names and ``torchvision:``/``timm:`` builders are fine; a ``file.py:factory`` spec must
stay inside the lock's folder and name a top-level ``def``/``class`` of that file; a
``package.module:factory`` spec needs its package allowed. Deciding what resolving will
run is the API's job, so the policy lives here, next to ``check_lock``.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path
from typing import Sequence

from cnnscope.analysis.lock_schema import LockFileError
from cnnscope.models import check_spec_name, spec_origin


def allowed_spec(spec: str, lock_folder: Path, allow_modules: Sequence[str]) -> str:
    """The spec to resolve for a lock entry (a file spec made absolute), or a refusal.

    Nothing is imported here: this only reads the text and the file system.
    """
    origin = spec_origin(spec)
    if origin in ("zoo", "torchvision", "timm"):
        return spec
    prefix, attr = spec.rsplit(":", 1)
    check_spec_name(attr, spec)
    if origin == "module":
        if any(prefix == m or prefix.startswith(m + ".") for m in allow_modules):
            return spec
        top = prefix.split(".")[0]
        raise LockFileError(
            f"the lock names module code {spec!r}, which check does not import on a lock "
            "file's say-so", f"if you trust it, allow it: cnnscope check LOCK --allow-module {top}")
    # A file: relative, inside the lock's folder tree, after symlinks.
    if os.path.isabs(prefix) or prefix.startswith("~") or (len(prefix) > 1 and prefix[1] == ":"):
        raise LockFileError(f"the lock names the file {prefix!r} by an absolute path",
                            "a lock may name model files only inside its own folder, by a "
                            "relative path (regenerate it with snapshot -o in that folder)")
    parts = Path(prefix).parts
    if ".." in parts:
        raise LockFileError(f"the lock names the file {prefix!r} outside its own folder",
                            "a lock may name model files only inside its own folder")
    root = lock_folder.resolve()
    target = (lock_folder / prefix).resolve()
    if target != root and root not in target.parents:
        raise LockFileError(f"the lock names the file {prefix!r}, which leads outside its own "
                            "folder (a symlink?)", "a lock may name model files only inside "
                            "its own folder")
    _defined_in_file(target, prefix, attr, spec)
    return f"{target}:{attr}"


MAX_MODEL_FILE = 16 * 2**20  # a model file larger than this is not read for its names


def _defined_in_file(path: Path, prefix: str, attr: str, spec: str) -> None:
    """Refuse ``attr`` unless the file's source defines it at top level (``def``/``class``).

    Read with ``ast``, without running the file: a name the file imports or assigns
    (``from os import system``) never gets it imported on a lock's say-so.
    """
    from cnnscope.errors import SpecRefusedError

    try:
        with open(path, "rb") as fh:
            source = fh.read(MAX_MODEL_FILE + 1)
        if len(source) > MAX_MODEL_FILE:
            raise SpecRefusedError(f"the lock names the model file {prefix!r}, which is larger "
                                   f"than {MAX_MODEL_FILE // 2**20} MiB")
        tree = ast.parse(source, filename=prefix)
    except OSError as exc:
        raise LockFileError(f"cannot read model file {prefix!r} named by the lock: "
                            f"{exc.strerror}") from None
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise LockFileError(f"model file {prefix!r} named by the lock is not Python "
                            f"({type(exc).__name__})") from None
    defined = {node.name for node in tree.body
               if isinstance(node, (ast.FunctionDef, ast.ClassDef))}
    if attr not in defined:
        raise SpecRefusedError(
            f"a lock may not name {spec!r}: {prefix!r} does not define {attr!r} (a top-level "
            "def or class)", "a lock may name only a factory defined in the file itself")
