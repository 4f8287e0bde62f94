"""The per-layer roofline: is a layer limited by memory traffic or by arithmetic?

Williams, Waterman & Patterson, "Roofline: An Insightful Visual Performance Model for
Multicore Architectures" (CACM 2009): a kernel of arithmetic intensity I (FLOPs per byte
of memory traffic) can reach at most ``min(peak_flops, I * peak_bandwidth)``. Below the
ridge point ``I = peak_flops / peak_bandwidth`` the bandwidth roof is the lower one: the
layer is **memory**-bound; at or above it, **compute**-bound.

Here both roofs are measured on the device (``ceiling.matmul_ceiling``,
``bandwidth.copy_bandwidth``), a layer's FLOPs and bytes come from the trace (bytes at the
minimal-traffic convention: inputs + parameters + outputs, each once), and its time from
``bench --per-layer`` (forward pass). Plain arithmetic, no torch.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from cnnscope.benchmark.records import LayerTiming, PerLayer

# Printed under every per-layer roofline table.
ROOFLINE_BASIS = (
    "roofline (forward pass): FLOPs = the trace's FLOPs (2 x MACs + bias and elementwise "
    "work); bytes = bytes_moved, input activations + parameters + output activations, each "
    "counted once at the row's element size (the minimal-traffic convention; fp32/tf32 4 "
    "bytes, bf16/fp16 2); intensity = FLOPs / bytes; bound = memory below the ridge point "
    "(matmul ceiling / copy bandwidth), compute at or above it."
)


def ridge_point(peak_flops: float, peak_bandwidth: float) -> float:
    """FLOPs per byte where the two roofs meet."""
    return peak_flops / peak_bandwidth


def bound(intensity: float | None, peak_flops: float, peak_bandwidth: float) -> str | None:
    """"memory" below the ridge point, "compute" at or above it; None without an intensity."""
    if intensity is None:
        return None
    return "memory" if intensity < ridge_point(peak_flops, peak_bandwidth) else "compute"


def apply_roofline(p: PerLayer, peak_flops: float | None, peak_bandwidth: float | None) -> PerLayer:
    """``p`` with each layer's ``bound`` judged against the two roofs (kept when one is missing)."""
    if not peak_flops or not peak_bandwidth:
        return p
    layers = tuple(replace(layer, bound=bound(layer.arithmetic_intensity, peak_flops, peak_bandwidth))
                   for layer in p.layers)
    return replace(p, layers=layers, peak_flops=peak_flops, peak_bandwidth=peak_bandwidth)


@dataclass(frozen=True)
class Waste:
    """A layer whose share of the forward time exceeds its share of the FLOPs."""

    layer: LayerTiming
    time_share: float  # of the sum of the layers' forward times
    flop_share: float  # of the sum of the layers' FLOPs
    excess_ms: float  # fwd_ms - (the time its FLOPs would take at the network's average rate)


def most_time_for_least_work(p: PerLayer, n: int = 3) -> list[Waste]:
    """The ``n`` layers that cost the most time beyond their share of the work.

    A layer's fair time is the forward time of all layers x its share of their FLOPs;
    the excess is its time minus that. The largest excesses are the layers that cost most
    time for least work (a batch norm, a concatenation, a depthwise convolution).
    """
    layers = [layer for layer in p.layers if layer.flops is not None]
    total_ms = sum(layer.fwd_ms for layer in layers)
    total_flops = sum(layer.flops or 0 for layer in layers)
    if total_ms <= 0 or total_flops <= 0:
        return []
    out = []
    for layer in layers:
        share = (layer.flops or 0) / total_flops
        excess = layer.fwd_ms - total_ms * share
        if excess > 0:
            out.append(Waste(layer, layer.fwd_ms / total_ms, share, excess))
    out.sort(key=lambda w: w.excess_ms, reverse=True)
    return out[:n]
