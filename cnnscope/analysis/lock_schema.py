"""What a lock file may say: its schema, checked before anything is built. Which model
specs it may name is the API's (``cnnscope.api.lock_policy``: it decides what resolving
will run).

A lock file is data. It may come from a pull request, so the gate treats it as hostile:

- every field is checked for type and range before any model is resolved (one line
  naming the field; exit 2, never 1, since exit 1 means drift and only drift);
- it never makes cnnscope import or run code on its own say-so. Zoo names and
  ``torchvision:``/``timm:`` builders are fine (installed packages, no weights). A
  ``file.py:factory`` spec must be a relative path inside the lock file's own folder
  tree (no absolute path, no ``..``, no symlink out of it), and is resolved against that
  folder. A ``package.module:factory`` spec needs its package allowed on the command line
  (``cnnscope check LOCK --allow-module mypkg``).
- after the colon comes one identifier naming a function or an ``nn.Module`` subclass
  defined in that file (a top-level ``def``/``class``, read with ``ast`` before the file
  runs) or module (checked in its namespace after the allowed import): no attribute
  chain, no dunder, nothing imported into the file (``net.py:torch.serialization.os.system``
  would otherwise run the shell).
"""

from __future__ import annotations

from typing import Any

from cnnscope.errors import UserFileError

SCHEMA_VERSION = 1  # the lock file format this schema describes
MAX_LOCK_BYTES = 64 * 2**20  # the whole zoo's lock is 0.1 MiB
MAX_MODELS = 10_000
MAX_COUNT = 2**63 - 1  # counts are int64 everywhere downstream (torch, pandas, JSON readers)
MAX_DIM = 2**31 - 1
MAX_SPEC = 4096


class LockFileError(UserFileError):
    """A lock file that is missing, not JSON, of another schema, or names what it may not."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _count(value: Any, where: str, *, low: int = 0, high: int = MAX_COUNT) -> None:
    if not _is_int(value):
        raise LockFileError(f"{where} must be an integer, not {_kind(value)}",
                            "regenerate the lock with cnnscope snapshot")
    if not low <= value <= high:
        raise LockFileError(f"{where} = {_short(value)} is out of range ({low} to {high})",
                            "regenerate the lock with cnnscope snapshot")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            float: "a number with a fraction", type(None): "null"}.get(type(value), type(value).__name__)


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 24 else text[:10] + "..." + text[-6:]


def validate_lock(data: Any, path: str) -> None:
    """Raise ``LockFileError`` naming the first field that is not what the schema says."""
    if not isinstance(data, dict):
        raise LockFileError(f"{path!r} is not a cnnscope lock file (it holds {_kind(data)}, "
                            "not an object)", "create one with cnnscope snapshot")
    if "schema_version" not in data:
        raise LockFileError(f"{path!r} is not a cnnscope lock file (no schema_version)",
                            "create one with cnnscope snapshot")
    version = data["schema_version"]
    if not _is_int(version) or version != SCHEMA_VERSION:
        raise LockFileError(
            f"lock file {path!r} has schema version {_short(repr(version))}; this cnnscope reads "
            f"version {SCHEMA_VERSION}", "regenerate it with cnnscope snapshot")
    for key in ("cnnscope_version", "torch_version"):
        if key in data and not isinstance(data[key], str):
            raise LockFileError(f"{path}: {key} must be a string, not {_kind(data[key])}")
    models = data.get("models")
    if not isinstance(models, list):
        raise LockFileError(f"{path}: models must be a list, not {_kind(models)}",
                            "regenerate it with cnnscope snapshot")
    if not models:
        raise LockFileError(f"{path}: models is empty, so there is nothing to check",
                            "record models with cnnscope snapshot MODEL... -o " + path)
    if len(models) > MAX_MODELS:
        raise LockFileError(f"{path}: {len(models)} models (at most {MAX_MODELS})")
    for i, m in enumerate(models):
        _validate_entry(m, f"{path}: models[{i}]")


def _validate_entry(m: Any, where: str) -> None:
    if not isinstance(m, dict):
        raise LockFileError(f"{where} must be an object, not {_kind(m)}",
                            "regenerate it with cnnscope snapshot")
    spec = m.get("spec")
    if not isinstance(spec, str) or not spec.strip() or len(spec) > MAX_SPEC \
            or any(ord(c) < 32 for c in spec):
        raise LockFileError(f"{where}.spec must be a model spec (a non-empty line of text)",
                            "regenerate it with cnnscope snapshot")
    where = f"{where} ({_short(spec)})"
    args = m.get("args", {})
    if not isinstance(args, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                             and len(v) <= MAX_SPEC for k, v in args.items()):
        raise LockFileError(f"{where}.args must map names to Python literal text",
                            "regenerate it with cnnscope snapshot")
    size = m.get("input_size")
    if not isinstance(size, list) or not 1 <= len(size) <= 5:
        raise LockFileError(f"{where}.input_size must be a list of 1 to 5 sizes, like [3, 224, 224]",
                            "regenerate it with cnnscope snapshot")
    for j, s in enumerate(size):
        _count(s, f"{where}.input_size[{j}]", low=1, high=MAX_DIM)
    _count(m.get("batch"), f"{where}.batch", low=1, high=MAX_DIM)
    for key in ("params", "macs"):
        _count(m.get(key), f"{where}.{key}")
    for key in ("trainable_params", "flops"):
        if key in m:
            _count(m[key], f"{where}.{key}")
    if "output_shapes" in m:
        shapes = m["output_shapes"]
        if not isinstance(shapes, list) or not all(isinstance(s, list) for s in shapes):
            raise LockFileError(f"{where}.output_shapes must be a list of shapes, like [[1, 1000]]")
        for j, s in enumerate(shapes):
            for k, d in enumerate(s):
                _count(d, f"{where}.output_shapes[{j}][{k}]", high=MAX_COUNT)
    if "layers" in m:
        layers = m["layers"]
        if not isinstance(layers, dict):
            raise LockFileError(f"{where}.layers must be an object (layer name -> params), "
                                f"not {_kind(layers)}")
        for name, value in layers.items():
            _count(value, f"{where}.layers[{_short(name)!r}]")
