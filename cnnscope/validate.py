"""One check for every number a user types as a float option (``--link-gbps``,
``--bucket-mb``, ``--rtol``, ``--min-time`` ...): finite and in range, before anything starts.

``float("nan")`` compares false with everything, so ``value <= 0`` lets NaN through and
a NaN prediction is printed next to real figures; ``inf`` passes every lower bound. Each
option therefore states its range here once, and NaN, infinities and values outside it
are one line naming the option.
"""

from __future__ import annotations

import math
from typing import Any

from cnnscope.errors import InvalidOptionError


def _text(value: Any) -> str:
    text = repr(value) if isinstance(value, float) else str(value)
    return text if len(text) <= 24 else text[:12] + "..." + text[-6:]


def finite(flag: str, value: Any, *, low: float, high: float, low_open: bool = False,
           example: str = "") -> float:
    """``value`` as a float when it is a finite number within ``[low, high]``
    (``(low, high]`` with ``low_open``); else ``InvalidOptionError`` naming ``flag``."""
    hint = f"e.g. {flag} {example}" if example else None
    if isinstance(value, bool):
        raise InvalidOptionError(f"{flag} {value} is not a number", hint)
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidOptionError(f"{flag} {_text(value)!r} is not a number", hint) from None
    if not math.isfinite(number):
        raise InvalidOptionError(f"{flag} {_text(value)} is not a finite number", hint)
    above = number > low if low_open else number >= low
    if not above or number > high:
        bound = f"more than {low:g}" if low_open else f"{low:g} or more"
        raise InvalidOptionError(f"{flag} {_text(value)} is out of range ({bound}, at most "
                                 f"{high:g})", hint)
    return number


# flag -> (low, high, low excluded, example): the range of every float option, in one place.
FLOAT_OPTIONS: dict[str, tuple[float, float, bool, str]] = {
    "--min-time": (0.0, 86_400.0, True, "2"),  # seconds of timing per row: up to a day
    "--bucket-mb": (0.0, 2.0**20, True, "25"),  # DDP's bucket_cap_mb: up to 1 TiB
    "--link-gbps": (0.0, 1e6, True, "100"),  # Gbit/s: up to 1 Pbit/s
    "--link-latency-us": (0.0, 1e9, False, "5"),  # microseconds per step: up to 1000 s
    "--rtol": (0.0, 1e6, False, "0.01"),  # a relative tolerance
}


def option(flag: str, value: Any) -> float | None:
    """A float option checked against its range in ``FLOAT_OPTIONS`` (None stays None)."""
    if value is None:
        return None
    low, high, low_open, example = FLOAT_OPTIONS[flag]
    return finite(flag, value, low=low, high=high, low_open=low_open, example=example)


def options(**values: Any) -> None:
    """``options(link_gbps=x, bucket_mb=y)``: each keyword is the option's flag in
    snake case; every one is checked, the first bad one raises."""
    for name, value in values.items():
        option("--" + name.replace("_", "-"), value)
