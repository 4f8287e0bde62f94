"""Lock files: the CI regression gate (``cnnscope snapshot`` / ``cnnscope check``).

A lock file records, per model, what a change to the model code must not move without
anyone noticing: params, trainable params, MACs, FLOPs, output shapes and per-layer
params, at a recorded input size and batch, plus the cnnscope and torch versions that
made it. ``cnnscope.api.check_lock`` re-traces every model (meta device: fast, no
weights) and lists each difference as a ``Drift`` (model, field, old, new, delta);
``cnnscope.api.make_lock`` writes the document. This module holds the schema's entries,
their comparison and the file's reading and writing: it never traces.

Schema (``schema_version`` 1)::

    {"schema_version": 1, "cnnscope_version": "0.1.0", "torch_version": "2.5.1",
     "models": [{"spec": "resnet50", "args": {"num_classes": "10"},
                 "input_size": [3, 224, 224], "batch": 1,
                 "params": 25557032, "trainable_params": 25557032,
                 "macs": 4089184256, "flops": 8217632232,
                 "output_shapes": [[1, 1000]],
                 "layers": {"conv1": 9408, "bn1": 128, ...}}]}

``args`` holds the builder's keyword arguments as Python literal text (``repr``), so a
tuple stays a tuple. ``layers`` maps each layer that owns parameters to their count.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import cnnscope.validate as validate
from cnnscope.analysis.lock_schema import (  # noqa: F401 - SCHEMA_VERSION: the lock's schema
    MAX_LOCK_BYTES,
    SCHEMA_VERSION,
    LockFileError,
    validate_lock,
)
from cnnscope.errors import InvalidOptionError
from cnnscope.literal import NotALiteral, literal
from cnnscope.results import Shown

# Fields compared as numbers (a tolerance can apply) and as exact values.
NUMERIC_FIELDS = ("params", "trainable_params", "macs", "flops")
TOLERANT_DEFAULT = ("macs", "flops")  # what a bare --rtol VALUE applies to


@dataclass(frozen=True)
class Drift:
    """One difference between the lock file and the code now."""

    model: str
    field: str  # "params", "macs", "output_shapes", "layer conv1 params", "error", ...
    old: Any
    new: Any

    @property
    def delta(self) -> int | None:
        """new - old for numbers (None for shapes, added/removed layers and errors)."""
        if isinstance(self.old, int) and isinstance(self.new, int) \
                and not isinstance(self.old, bool):
            return self.new - self.old
        return None

    @property
    def relative(self) -> float | None:
        d = self.delta
        return d / self.old if d is not None and self.old else None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "field": self.field, "old": self.old, "new": self.new,
                "delta": self.delta, "relative": self.relative}


@dataclass(frozen=True)
class CheckResult(Shown):
    """What ``cnnscope.api.check_lock`` found: drifts (empty: everything matches) and notes."""

    path: str
    checked: tuple[str, ...]  # the specs checked
    drifts: tuple[Drift, ...]
    notes: tuple[str, ...] = field(default=())
    rtol: tuple[tuple[str, float], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.drifts

    def to_dict(self) -> dict[str, Any]:
        return {"lock": self.path, "ok": self.ok, "checked": list(self.checked),
                "rtol": dict(self.rtol), "drifts": [d.to_dict() for d in self.drifts],
                "notes": list(self.notes)}


# ---------------------------------------------------------------------- snapshot


def versions() -> dict[str, str]:
    """The cnnscope and torch versions a lock records."""
    import torch

    from cnnscope.version import __version__

    return {"cnnscope_version": __version__, "torch_version": torch.__version__}


def encode_args(kwargs: dict[str, Any], spec: str) -> dict[str, str]:
    """Builder kwargs as literal text; values that are not Python literals are refused."""
    out = {}
    for key, value in sorted(kwargs.items()):
        text = repr(value)
        try:
            same = literal(text) == value
        except NotALiteral:
            same = False
        if not same:
            raise InvalidOptionError(
                f"{spec}: argument {key}={text} is not a Python literal, so a lock file cannot "
                "record it", "use numbers, strings, tuples, lists, dicts, True/False/None")
        out[key] = text
    return out


def decode_args(args: dict[str, str], where: str) -> dict[str, Any]:
    out = {}
    for key, text in args.items():
        try:
            out[key] = literal(text)
        except NotALiteral as exc:
            raise LockFileError(f"{where}: args[{key[:40]!r}] is {exc}",
                                "regenerate it with cnnscope snapshot") from None
    return out


def entry(spec: str, kwargs: dict[str, Any], report) -> dict[str, Any]:
    """One model's lock entry from its trace."""
    t = report.totals
    return {
        "spec": spec,
        "args": encode_args(kwargs, spec),
        "input_size": list(report.input_size),
        "batch": report.batch,
        "params": t.params,
        "trainable_params": t.trainable_params,
        "macs": t.macs,
        "flops": t.flops,
        "output_shapes": [list(s) for s in report.output_shapes],
        "layers": {r.name: r.params for r in report.layers if r.params},
    }


def relative_file_spec(spec: str, folder: Path) -> str:
    """``file.py:factory`` relative to the lock's folder (a file outside it is refused)."""
    prefix, attr = spec.rsplit(":", 1)
    file, root = Path(prefix).resolve(), folder.resolve()
    if root not in file.parents:
        raise InvalidOptionError(
            f"model file {prefix!r} is outside the lock file's folder {str(folder) or '.'!r}, "
            "and check only runs model files inside it",
            "write the lock into a folder that contains the model file")
    return f"{file.relative_to(root).as_posix()}:{attr}"


_NUMBER_LIST = re.compile(r"\[\s*(-?\d+(?:,\s*-?\d+)*)\s*\]")
_LIST_OF_LISTS = re.compile(r"\[\s*(\[[^\[\]]*\](?:,\s*\[[^\[\]]*\])*)\s*\]")


def dump_lock(lock: dict[str, Any]) -> str:
    """The lock as stable, diff-friendly JSON: one field or layer a line, shapes inline."""
    text = json.dumps(lock, indent=1)
    text = _NUMBER_LIST.sub(lambda m: "[" + ", ".join(re.split(r",\s*", m.group(1))) + "]", text)
    text = _LIST_OF_LISTS.sub(lambda m: "[" + ", ".join(re.split(r"(?<=\]),\s*", m.group(1))) + "]",
                              text)
    if json.loads(text) != lock:  # a string that looked like a list was touched: play safe
        text = json.dumps(lock, indent=1)
    return text + "\n"


# ---------------------------------------------------------------------- check


def load_lock(path: str | Path) -> dict[str, Any]:
    """Read and validate a lock file; every problem is one ``LockFileError`` line.

    Nothing is built or imported here: see ``lock_schema`` for what is checked.
    """
    p = Path(path)
    if not p.exists():
        raise LockFileError(f"lock file {str(path)!r} does not exist",
                            "create it with: cnnscope snapshot MODEL... -o " + str(path))
    if p.is_dir():
        raise LockFileError(f"lock file {str(path)!r} is a folder", "give the path of the .json file")
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_LOCK_BYTES + 1)
        if len(raw) > MAX_LOCK_BYTES:
            raise LockFileError(f"lock file {str(path)!r} is larger than "
                                f"{MAX_LOCK_BYTES // 2**20} MiB", "is it really a lock file?")
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant,
                          object_pairs_hook=_unique_keys(str(path)))
    except UnicodeDecodeError:
        raise LockFileError(f"lock file {str(path)!r} is not text") from None
    except json.JSONDecodeError as exc:
        raise LockFileError(f"lock file {str(path)!r} is not JSON (line {exc.lineno}: {exc.msg})",
                            "regenerate it with cnnscope snapshot") from None
    except RecursionError:
        raise LockFileError(f"lock file {str(path)!r} is nested too deeply",
                            "regenerate it with cnnscope snapshot") from None
    except ValueError as exc:  # NaN/Infinity, or an integer of thousands of digits
        raise LockFileError(f"lock file {str(path)!r} is not strict JSON ({exc})",
                            "regenerate it with cnnscope snapshot") from None
    except OSError as exc:
        raise LockFileError(f"cannot read lock file {str(path)!r}: {exc.strerror}") from None
    validate_lock(data, str(path))
    return data


def _unique_keys(path: str):
    """A JSON object hook refusing a key given twice: json keeps the last value while a
    reviewer reads the first, so a lock could say one thing and check another."""
    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise LockFileError(f"lock file {path!r} gives the key {key[:60]!r} twice in one "
                                    "object", "keep one; regenerate it with cnnscope snapshot")
            out[key] = value
        return out
    return build


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_rtol(values: Iterable[str] | None) -> dict[str, float]:
    """``["0.01"]`` -> macs and flops at 1%; ``["params=0.001"]`` -> that field only.

    Fields not named are exact (tolerance 0). Params are exact unless named explicitly.
    """
    out = {f: 0.0 for f in NUMERIC_FIELDS}
    for item in values or []:
        key, sep, text = item.rpartition("=")
        fields = [key.strip()] if sep else list(TOLERANT_DEFAULT)
        try:
            value = float(text)
        except ValueError:
            raise InvalidOptionError(f"malformed --rtol {item!r}",
                                     "write --rtol 0.01 (MACs and FLOPs) or --rtol FIELD=0.01") \
                from None
        value = validate.option("--rtol", value)
        for f in fields:
            if f not in out:
                raise InvalidOptionError(f"--rtol: unknown field {f!r}",
                                         "fields: " + ", ".join(NUMERIC_FIELDS))
            out[f] = value
    return out


def _within(old: int, new: int, rtol: float) -> bool:
    return abs(new - old) <= rtol * abs(old)


def compare_entry(old: dict[str, Any], new: dict[str, Any], rtol: dict[str, float]) -> list[Drift]:
    """Every difference between a locked entry and a fresh one."""
    name = old["spec"]
    drifts = []
    for f in NUMERIC_FIELDS:
        if f in old and old[f] != new[f] and not _within(old[f], new[f], rtol.get(f, 0.0)):
            drifts.append(Drift(name, f, old[f], new[f]))
    if "output_shapes" in old and old["output_shapes"] != new["output_shapes"]:
        drifts.append(Drift(name, "output_shapes", _shapes(old["output_shapes"]),
                            _shapes(new["output_shapes"])))
    old_layers, new_layers = old.get("layers"), new["layers"]
    if isinstance(old_layers, dict):
        names = list(old_layers) + [n for n in new_layers if n not in old_layers]
        tol = rtol.get("params", 0.0)
        for layer in names:
            a, b = old_layers.get(layer), new_layers.get(layer)
            if a == b:
                continue
            if a is None:
                drifts.append(Drift(name, f"layer {layer} params", "(absent)", b))
            elif b is None:
                drifts.append(Drift(name, f"layer {layer} params", a, "(absent)"))
            elif not _within(a, b, tol):
                drifts.append(Drift(name, f"layer {layer} params", a, b))
    return drifts


def _shapes(shapes: list) -> str:
    return ", ".join("x".join(str(d) for d in s) for s in shapes)
