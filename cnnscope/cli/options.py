"""A command's options as one dataclass, so that the command's body stays short.

typer reads a command's parameters from ``inspect.signature`` and their types from
``typing.get_type_hints``. ``takes(Options)`` gives the decorated body the signature of
``Options``' fields, in their order and with their ``typer.Option``/``typer.Argument``
defaults, so ``--help`` is exactly what the same parameters written out would give; the
body receives one ``Options`` instance::

    @dataclass(frozen=True)
    class BenchOptions:
        models: Optional[List[str]] = typer.Argument(None, help="...")
        batch: str = typer.Option("1", "--batch", "-b", help="...")

    @takes(BenchOptions)
    def bench(o: BenchOptions) -> None:
        \"\"\"The command's help text.\"\"\"
        ...
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def takes(options: type[T]) -> Callable[[Callable[[T], None]], Callable[..., None]]:
    """Make ``body(o: options)`` a typer command taking ``options``' fields as parameters."""
    hints = typing.get_type_hints(options)
    fields = dataclasses.fields(options)  # type: ignore[arg-type]
    parameters = [inspect.Parameter(f.name, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                    default=f.default, annotation=hints[f.name]) for f in fields]

    def wrap(body: Callable[[T], None]) -> Callable[..., None]:
        def command(**values: Any) -> None:
            return body(options(**values))

        command.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
        command.__annotations__ = {**{f.name: hints[f.name] for f in fields}, "return": None}
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            setattr(command, attr, getattr(body, attr))
        return command

    return wrap
