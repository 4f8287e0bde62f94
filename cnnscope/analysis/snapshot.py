"""Lock files: the CI regression gate (``cnnscope snapshot`` / ``cnnscope check``).

A lock file records, per model, what a change to the model code must not move without
anyone noticing: params, trainable params, MACs, FLOPs, output shapes and per-layer
params, at a recorded input size and batch, plus the cnnscope and torch versions that
made it. ``check_lock`` re-traces every model (meta device: fast, no weights) and lists
each difference as a ``Drift`` (model, field, old, new, delta).

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

import ast
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

from cnnscope.analysis.lock_schema import (
    MAX_LOCK_BYTES,
    SCHEMA_VERSION,
    LockFileError,
    allowed_spec,
    validate_lock,
)
from cnnscope.errors import CnnscopeError, InvalidOptionError

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
class CheckResult:
    """What ``check_lock`` found: drifts (empty: everything matches) and notes."""

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


def _versions() -> dict[str, str]:
    import torch

    from cnnscope import __version__

    return {"cnnscope_version": __version__, "torch_version": torch.__version__}


def encode_args(kwargs: dict[str, Any], spec: str) -> dict[str, str]:
    """Builder kwargs as literal text; values that are not Python literals are refused."""
    out = {}
    for key, value in sorted(kwargs.items()):
        text = repr(value)
        try:
            same = ast.literal_eval(text) == value
        except (ValueError, SyntaxError):
            same = False
        if not same:
            raise InvalidOptionError(
                f"{spec}: argument {key}={text} is not a Python literal, so a lock file cannot "
                "record it", "use numbers, strings, tuples, lists, dicts, True/False/None")
        out[key] = text
    return out


def decode_args(args: dict[str, str], where: str) -> dict[str, Any]:
    try:
        return {k: ast.literal_eval(v) for k, v in args.items()}
    except (ValueError, SyntaxError, AttributeError):
        raise LockFileError(f"{where}: malformed args {args!r}",
                            "regenerate it with cnnscope snapshot") from None


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


def make_lock(specs: Sequence[str], input_size: tuple[int, ...] | None = None, batch: int = 1,
              model_kwargs: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
              lock_folder: str | Path | None = None) -> dict[str, Any]:
    """Trace every spec (meta device) and return the lock document.

    ``model_kwargs``: one dict for every builder, or a list with one dict per spec.
    ``lock_folder``: where the lock will live; model files are then recorded relative
    to it, as ``check`` reads them (a file outside that folder is refused now, since
    ``check`` would refuse it later).
    """
    from cnnscope.api import analyze, resolve_all

    specs = list(specs)
    if not specs:
        raise InvalidOptionError("no model to snapshot", "name models, or use --zoo")
    sources = resolve_all(specs, model_kwargs)  # a bad name fails before any tracing
    models = []
    seen: set[str] = set()
    for spec, source in zip(specs, sources):
        kwargs = dict(source.kwargs)
        spec_text = source.spec or spec
        if lock_folder is not None and source.origin == "file":
            spec_text = _relative_file_spec(spec_text, Path(lock_folder))
        encoded = encode_args(kwargs, spec_text)
        report = analyze(source, input_size, batch)
        key = json.dumps([spec_text, encoded, list(report.input_size), batch])
        if key in seen:  # the same model named twice is recorded once
            continue
        seen.add(key)
        models.append(entry(spec_text, kwargs, report))
    return {"schema_version": SCHEMA_VERSION, **_versions(), "models": models}


def _relative_file_spec(spec: str, folder: Path) -> str:
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
        data = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
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
            value = -1.0
        if value < 0 or value != value:
            raise InvalidOptionError(f"malformed --rtol {item!r}",
                                     "write --rtol 0.01 (MACs and FLOPs) or --rtol FIELD=0.01")
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


def check_lock(path: str | Path, rtol: dict[str, float] | None = None,
               models: Sequence[str] | None = None,
               allow_modules: Sequence[str] = ()) -> CheckResult:
    """Re-trace every model of the lock file and list what drifted.

    ``models`` restricts the check to those specs. ``allow_modules`` names the packages
    whose ``package.module:factory`` specs may be imported (a lock alone never decides
    which code runs; see ``lock_schema``). The whole lock is validated, and every spec
    cleared, before the first model is built. A model that no longer loads or traces is
    a drift with field "error" (it fails now), never a pass.
    """
    from cnnscope.api import analyze
    from cnnscope.models import resolve

    lock = load_lock(path)
    tolerances = parse_rtol(None) if rtol is None else {**parse_rtol(None), **rtol}
    entries = lock["models"]
    if models:
        known = {m["spec"] for m in entries}
        missing = [m for m in models if m not in known]
        if missing:
            raise InvalidOptionError(f"not in {path}: {', '.join(missing)}",
                                     "models there: " + ", ".join(sorted(known)))
        entries = [m for m in entries if m["spec"] in models]
    folder = Path(path).parent
    targets = [allowed_spec(m["spec"].strip(), folder, allow_modules) for m in entries]
    kwargs_of = [decode_args(m.get("args", {}), f"{path} {m['spec']}") for m in entries]
    notes = []
    now = _versions()
    for key, label in (("cnnscope_version", "cnnscope"), ("torch_version", "torch")):
        if lock.get(key) and lock[key] != now[key]:
            notes.append(f"lock made with {label} {lock[key]}, checking with {now[key]}")
    drifts: list[Drift] = []
    counts: dict[str, int] = {}
    for m in entries:
        counts[m["spec"]] = counts.get(m["spec"], 0) + 1
    labels = []
    for m, target, kwargs in zip(entries, targets, kwargs_of):
        # One spec locked at two sizes or with two argument sets needs telling apart.
        label = m["spec"]
        if counts[label] > 1:
            args = ",".join(f"{k}={v}" for k, v in m.get("args", {}).items())
            label += f"@{'x'.join(map(str, m['input_size']))}" + (f"[{args}]" if args else "")
        labels.append(label)
        try:
            report = analyze(resolve(target, **kwargs), tuple(m["input_size"]), m["batch"])
        except CnnscopeError as err:
            drifts.append(Drift(label, "error", "traced", f"fails now: {err}"))
            continue
        except Exception as exc:  # noqa: BLE001 - whatever broke, the gate must not pass
            drifts.append(Drift(label, "error", "traced",
                                f"fails now: {type(exc).__name__}: {exc}".splitlines()[0]))
            continue
        fresh = entry(m["spec"], kwargs, report)
        drifts.extend(replace(d, model=label) for d in compare_entry(m, fresh, tolerances))
    return CheckResult(path=str(path), checked=tuple(labels),
                       drifts=tuple(drifts), notes=tuple(notes),
                       rtol=tuple(sorted(tolerances.items())))
