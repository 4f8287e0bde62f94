"""Receptive-field maths on one spatial axis: what a layer's taps read (``Window``) and
the exact fields of a whole feature map (``AxisField``), their hulls and bounds.

See ``cnnscope.analysis.receptive_field`` for the method; this module knows no layers.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from math import floor, gcd
from typing import Sequence

# Per-axis states other than an AxisField.
GLOBAL = "global"  # every unit depends on the whole input along this axis
UNKNOWN = "unknown"  # an operation this analysis does not understand
CONSTANT = "constant"  # depends on no input at all (ignored by merges)


@dataclass(frozen=True)
class Window:
    """Which input units each output unit of a layer reads, along one axis.

    Output unit ``u = m * period + q`` reads ``taps[q] + m * shift``.
    """

    period: int
    shift: int
    taps: tuple[tuple[int, ...], ...]

    @classmethod
    def conv(cls, k: int, s: int = 1, p: int = 0, d: int = 1) -> "Window":
        """Convolution or pooling: unit u reads s*u - p + t*d, t = 0..k-1."""
        return cls(1, s, (tuple(-p + t * d for t in range(k)),))

    @classmethod
    def transposed(cls, k: int, s: int = 1, p: int = 0, d: int = 1) -> "Window":
        """Transposed convolution: output o gets input i where o = s*i - p + t*d."""
        taps = []
        for q in range(s):
            taps.append(tuple(sorted({(q + p - t * d) // s for t in range(k)
                                      if (q + p - t * d) % s == 0})))
        return cls(s, 1, tuple(taps))

    @classmethod
    def resample(cls, n_in: int, n_out: int, mode: str, align_corners: bool = False) -> "Window":
        """Interpolation from n_in to n_out units (PyTorch's source-index rules).

        nearest: src = floor(o * n_in / n_out). Linear modes with align_corners=False:
        src = (o + 0.5) * n_in / n_out - 0.5, reading floor(src) and floor(src) + 1
        (bicubic: floor(src) - 1 .. floor(src) + 2); an exact integer src reads one unit.
        The clamping PyTorch applies at the border is an edge effect, like padding, and
        is not part of the theoretical field.
        """
        if align_corners and n_out > 1:
            ratio = Fraction(n_in - 1, n_out - 1)
            offset = Fraction(0)
        else:
            ratio = Fraction(n_in, n_out)
            offset = Fraction(0) if mode in ("nearest", "nearest-exact") else (ratio - 1) / 2
        period = ratio.denominator
        shift = ratio.numerator
        taps = []
        for o in range(period):
            if mode in ("nearest", "nearest-exact", "area"):
                if mode == "nearest-exact":
                    src = floor((o + Fraction(1, 2)) * ratio)
                else:
                    src = floor(o * ratio)
                taps.append((src,))
                continue
            x = o * ratio + offset
            lo = floor(x)
            if x == lo:
                taps.append((lo,))
            elif mode == "bicubic":
                taps.append((lo - 1, lo, lo + 1, lo + 2))
            else:  # linear, bilinear, trilinear
                taps.append((lo, lo + 1))
        return cls(period, shift, tuple(taps))

    @classmethod
    def adaptive(cls, n_in: int, n_out: int) -> "Window":
        """Adaptive pooling: bin i covers floor(i*n/m) .. ceil((i+1)*n/m) - 1."""
        g = gcd(n_in, n_out)
        period, shift = n_out // g, n_in // g
        taps = []
        for i in range(period):
            a = (i * n_in) // n_out
            b = -((-(i + 1) * n_in) // n_out)
            taps.append(tuple(range(a, b)))
        return cls(period, shift, tuple(taps))

    @classmethod
    def offset(cls, start: int, step: int = 1) -> "Window":
        """A crop, a pad (negative start) or a strided slice: unit u reads start + step*u."""
        return cls(1, step, ((start,),))


@dataclass(frozen=True)
class AxisField:
    """The exact fields of every unit of a feature map along one axis.

    Unit ``u = m * period + q`` sees input pixels ``lo[q] + m*shift .. hi[q] + m*shift``.
    """

    period: int
    shift: int
    lo: tuple[int, ...]
    hi: tuple[int, ...]

    @classmethod
    def identity(cls) -> "AxisField":
        """The model input: pixel u sees itself."""
        return cls(1, 1, (0,), (0,))

    def lo_at(self, u: int) -> int:
        m, q = divmod(u, self.period)
        return self.lo[q] + m * self.shift

    def hi_at(self, u: int) -> int:
        m, q = divmod(u, self.period)
        return self.hi[q] + m * self.shift

    def span(self, u: int) -> tuple[int, int]:
        """First and last input pixel of unit u's field (unclamped)."""
        return self.lo_at(u), self.hi_at(u)

    @property
    def size(self) -> int:
        """Receptive field: the largest field of any unit."""
        return max(h - l + 1 for l, h in zip(self.lo, self.hi))

    @property
    def min_size(self) -> int:
        return min(h - l + 1 for l, h in zip(self.lo, self.hi))

    @property
    def jump(self) -> Fraction:
        """Effective stride in input pixels."""
        return Fraction(self.shift, self.period)

    @property
    def padding(self) -> int:
        """How far the first unit's field starts before input pixel 0."""
        return -self.lo[0]

    @property
    def centre(self) -> Fraction:
        """Centre of unit 0 on the grid ``centre + u * jump`` (exact when period is 1)."""
        j = self.jump
        return sum((Fraction(l + h, 2) - q * j for q, (l, h) in enumerate(zip(self.lo, self.hi))),
                   Fraction(0)) / self.period

    @property
    def jitter(self) -> Fraction:
        """Largest distance of a unit's centre from the grid (0 for integer strides)."""
        c, j = self.centre, self.jump
        return max(abs(Fraction(l + h, 2) - (c + q * j))
                   for q, (l, h) in enumerate(zip(self.lo, self.hi)))

    def lift(self, period: int) -> "AxisField":
        """The same fields written with a longer period (a multiple of this one)."""
        if period == self.period:
            return self
        return AxisField(period, self.shift * (period // self.period),
                         tuple(self.lo_at(u) for u in range(period)),
                         tuple(self.hi_at(u) for u in range(period)))

    def through(self, w: Window) -> "AxisField":
        """Fields after a layer that reads this map through window ``w``."""
        if w.shift == 0:
            m = 1
        else:
            m = self.period // gcd(self.period, w.shift)
        period = w.period * m
        shift = (w.shift * m // self.period) * self.shift
        lo, hi = [], []
        for u in range(period):
            k, q = divmod(u, w.period)
            taps = w.taps[q]
            if not taps:
                raise ValueError("some output units read no input")
            lo.append(min(self.lo_at(t + k * w.shift) for t in taps))
            hi.append(max(self.hi_at(t + k * w.shift) for t in taps))
        return AxisField(period, shift, tuple(lo), tuple(hi)).normalized()

    def normalized(self) -> "AxisField":
        """The shortest period that describes the same fields."""
        p = self.period
        for d in range(1, p):
            if p % d or (self.shift * d) % p:
                continue
            step = self.shift * d // p
            if all(self.lo[u + d] == self.lo[u] + step and self.hi[u + d] == self.hi[u] + step
                   for u in range(p - d)):
                return AxisField(d, step, self.lo[:d], self.hi[:d])
        return self


def merge_fields(fields: Sequence[AxisField]) -> AxisField:
    """Hull of several maps' fields, unit by unit (all must have the same jump)."""
    period = 1
    for f in fields:
        period = period * f.period // gcd(period, f.period)
    lifted = [f.lift(period) for f in fields]
    shifts = {f.shift for f in lifted}
    if len(shifts) != 1:
        raise ValueError("fields with different strides have no common hull")
    lo = tuple(min(f.lo[u] for f in lifted) for u in range(period))
    hi = tuple(max(f.hi[u] for f in lifted) for u in range(period))
    return AxisField(period, lifted[0].shift, lo, hi).normalized()


def bound_on_grid(base: AxisField, others: Sequence[AxisField], n: int) -> AxisField:
    """Fields on ``base``'s unit grid wide enough to hold, for each of the ``n`` units of
    the map, that unit's field in every one of ``others`` (whose strides differ)."""
    lo, hi = list(base.lo), list(base.hi)
    for f in others:
        for u in range(n):
            m, q = divmod(u, base.period)
            lo[q] = min(lo[q], f.lo_at(u) - m * base.shift)
            hi[q] = max(hi[q], f.hi_at(u) - m * base.shift)
    return AxisField(base.period, base.shift, tuple(lo), tuple(hi)).normalized()
