"""``--arg [MODEL:]key=value``: keyword arguments for model builders, shared by every command.

Values are Python literals when they parse as one (``width=32`` is an int,
``widths=(16,32)`` a tuple, ``norm=None`` None), strings otherwise (``act=relu``).
With several models (compare, report, snapshot) an argument goes to every model, or,
prefixed with a model as typed on the command line, to that model only:
``--arg examples/custom_model.py:build:width=32``.
"""

from __future__ import annotations

from typing import Any, List, Optional, Sequence

import typer

ArgOpt = typer.Option(
    None, "--arg", "-a", metavar="[MODEL:]KEY=VALUE",
    help="Keyword argument for the model builder (repeatable), e.g. --arg num_classes=10. "
         "Values are Python literals, else strings. With several models, prefix one "
         "to target it: --arg net.py:build:width=32.",
)


def _split(item: str) -> tuple[str | None, str, Any]:
    from cnnscope.errors import InvalidOptionError

    left, sep, text = item.partition("=")
    model, _, key = left.rpartition(":")
    key = key.strip()
    if not sep or not key.isidentifier():
        raise InvalidOptionError(f"malformed --arg {item!r}",
                                 "write it as --arg key=value, e.g. --arg num_classes=10")
    return (model or None), key, parse_value(text)


def parse_args(values: Optional[List[str]]) -> dict[str, Any]:
    """``["width=32", "act=relu"]`` -> ``{"width": 32, "act": "relu"}`` (one model)."""
    return parse_model_args(values, None)[0]


def parse_model_args(values: Optional[List[str]], models: Sequence[str] | None) -> list[dict[str, Any]]:
    """One kwargs dict per model: plain items go to all, ``MODEL:key=value`` to MODEL."""
    from cnnscope.errors import InvalidOptionError

    names = list(models) if models is not None else [None]
    out: list[dict[str, Any]] = [{} for _ in names]
    for item in values or []:
        model, key, value = _split(item)
        if model is None:
            targets = range(len(names))
        else:
            targets = [i for i, n in enumerate(names) if n == model]
            if not targets:
                hint = ("models given: " + ", ".join(n for n in names if n)) if models else \
                    "drop the MODEL: prefix for a single model"
                raise InvalidOptionError(f"--arg {item!r} names a model that is not given", hint)
        for i in targets:
            if key in out[i]:
                raise InvalidOptionError(f"--arg {key} given twice", "give each key once")
            out[i][key] = value
    return out


def parse_value(text: str) -> Any:
    """A Python literal when ``text`` is one, else the string itself."""
    from cnnscope.literal import NotALiteral, literal

    try:
        return literal(text)
    except NotALiteral:
        return text
