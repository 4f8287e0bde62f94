"""Parsing ``cnnscope bench``'s list options: "1,32,128", "fp32,bf16", "infer,train".

Each parser returns the values in the order given, de-duplicated, or raises a one-line
``InvalidOptionError``; the bench package receives parsed values only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from cnnscope.errors import InvalidOptionError

if TYPE_CHECKING:
    import torch


def parse_list(text: str | Sequence[str], what: str) -> list[str]:
    """"fp32,bf16" -> ["fp32", "bf16"]; repeated options are joined the same way."""
    parts = [text] if isinstance(text, str) else list(text)
    out = [p.strip().lower() for part in parts for p in str(part).split(",") if p.strip()]
    if not out:
        raise InvalidOptionError(f"no {what} given", f"e.g. --{what} ...")
    return list(dict.fromkeys(out))  # de-duplicated, order kept


def parse_batches(text: str | Sequence[str]) -> list[int]:
    values = []
    for item in parse_list(text, "batch"):
        try:
            b = int(item)
        except ValueError:
            raise InvalidOptionError(f"batch size {item!r} is not an integer", "e.g. --batch 1,32,128") from None
        if b < 1:
            raise InvalidOptionError(f"batch size {b} is not positive", "use --batch 1 or more")
        values.append(b)
    return values


def parse_modes(text: str | Sequence[str]) -> list[str]:
    from cnnscope.benchmark.runner import MODES  # lazily: this module is loaded at start-up

    modes = parse_list(text, "mode")
    for m in modes:
        if m not in MODES:
            raise InvalidOptionError(f"unknown mode {m!r}", "use infer, train or infer,train")
    return modes


def parse_dtypes(text: str | Sequence[str], device: torch.device) -> list[str]:
    from cnnscope.benchmark.precision import check_dtype

    return [check_dtype(d, device) for d in parse_list(text, "dtype")]


def split_specs(items: Sequence[str]) -> list[str]:
    """Model specs as typed, comma-separated lists split (case kept: specs can be paths)."""
    out = [p.strip() for item in items for p in item.split(",") if p.strip()]
    return list(dict.fromkeys(out))
