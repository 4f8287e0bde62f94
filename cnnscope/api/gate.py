"""The CI regression gate through the API (``cnnscope snapshot`` / ``cnnscope check``).

``make_lock`` traces every spec and returns the lock document; ``check_lock`` re-traces
every model of a lock file and lists what drifted. The schema, the entries, their
comparison and the file's reading and writing are ``cnnscope.analysis.snapshot``'s.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import cnnscope.validate as validate
from cnnscope.analysis.lock_schema import SCHEMA_VERSION
from cnnscope.analysis.snapshot import (
    CheckResult,
    Drift,
    compare_entry,
    decode_args,
    encode_args,
    entry,
    load_lock,
    parse_rtol,
    relative_file_spec,
    versions,
)
from cnnscope.api.analyze_model import analyze, resolve_all
from cnnscope.api.lock_policy import allowed_spec
from cnnscope.errors import CnnscopeError, InvalidOptionError, SpecRefusedError
from cnnscope.models import resolve_defined


def make_lock(specs: Sequence[str], input_size: tuple[int, ...] | None = None, batch: int = 1,
              model_kwargs: dict[str, Any] | Sequence[dict[str, Any]] | None = None,
              lock_folder: str | Path | None = None) -> dict[str, Any]:
    """Trace every spec (meta device) and return the lock document.

    ``model_kwargs``: one dict for every builder, or a list with one dict per spec.
    ``lock_folder``: where the lock will live; model files are then recorded relative
    to it, as ``check`` reads them (a file outside that folder is refused now, since
    ``check`` would refuse it later).
    """
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
            spec_text = relative_file_spec(spec_text, Path(lock_folder))
        if source.origin in ("file", "module"):  # what check would refuse is refused now
            resolve_defined(source.spec, kwargs)
        encoded = encode_args(kwargs, spec_text)
        report = analyze(source, input_size, batch)
        key = json.dumps([spec_text, encoded, list(report.input_size), batch])
        if key in seen:  # the same model named twice is recorded once
            continue
        seen.add(key)
        models.append(entry(spec_text, kwargs, report))
    return {"schema_version": SCHEMA_VERSION, **versions(), "models": models}


def check_lock(path: str | Path, rtol: dict[str, float] | None = None,
               models: Sequence[str] | None = None,
               allow_modules: Sequence[str] = ()) -> CheckResult:
    """Re-trace every model of the lock file and list what drifted.

    ``models`` restricts the check to those specs. ``allow_modules`` names the packages
    whose ``package.module:factory`` specs may be imported (a lock alone never decides
    which code runs; see ``lock_policy``). The whole lock is validated, and every spec
    cleared, before the first model is built. A model that no longer loads or traces is
    a drift with field "error" (it fails now), never a pass.
    """
    lock = load_lock(path)
    tolerances = parse_rtol(None) if rtol is None else \
        {**parse_rtol(None), **{k: validate.option("--rtol", v) for k, v in rtol.items()}}
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
    now = versions()
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
            report = analyze(resolve_defined(target, kwargs), tuple(m["input_size"]),
                             m["batch"])
        except SpecRefusedError:  # the lock named what it may not: exit 2, not a drift
            raise
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
