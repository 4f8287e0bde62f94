"""Human-readable numbers: K/M/G/T with the unit named; exact integers elsewhere."""

from __future__ import annotations


def human(n: float, unit: str = "") -> str:
    """1_234_567 -> '1.23 M'; small numbers stay exact."""
    if n is None:
        return "-"
    for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {suffix}{unit}".rstrip()
    return f"{int(n)} {unit}".rstrip() if float(n).is_integer() else f"{n:.2f} {unit}".rstrip()


def thousands(n: int | None) -> str:
    """25557032 -> '25,557,032'."""
    return "-" if n is None else f"{n:,}"


def shape(s: tuple[int, ...] | list[int] | None) -> str:
    """(1, 64, 112, 112) -> '1x64x112x112'."""
    return "-" if not s else "x".join(str(d) for d in s)


def bytes_h(n: int | None) -> str:
    """Bytes with binary units: 1048576 -> '1.00 MiB'."""
    if n is None:
        return "-"
    for factor, suffix in ((2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= factor:
            return f"{n / factor:.2f} {suffix}"
    return f"{n} B"
