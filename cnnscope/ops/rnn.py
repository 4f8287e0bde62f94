"""Recurrent layers as the CPU (oneDNN) runs them: one op per layer and direction."""

from __future__ import annotations

from math import prod
from typing import Any, Sequence

from cnnscope.ops.cost import Cost, Shape
from cnnscope.ops.entry import entry

# Elementwise FLOPs per hidden unit per step of the unfused cell (what the meta device
# runs): LSTM 3 sigmoid + 2 tanh + 3 mul + 1 add; GRU 2 sigmoid + 1 tanh + 3 mul + 4 add/sub;
# plain RNN one activation.
_RNN_CELL = {2: (4, 9, True), 3: (3, 10, False), 1: (1, 1, True), 0: (1, 1, True)}


def mkldnn_rnn_layer_cost(args: Sequence[Any], outs: Sequence[Shape]) -> Cost:
    """One layer and direction of a CPU (oneDNN) LSTM/GRU/RNN over the whole sequence,
    counted as the unfused cell the meta device runs, step by step.

    mkldnn_rnn_layer(input (T, B, I), w_ih (G*H, I), w_hh (G*H, H'), b_ih, b_hh, hx, cx,
    reverse, batch_sizes, mode, hidden_size, num_layers, has_biases, ...): per step
    B*G*H*(I + H') MACs; FLOPs 2 x MACs + the bias adds (2 per gate output with biases)
    + the add of the two products (LSTM, RNN) + the cell's elementwise work.
    """
    x, w_ih, w_hh = args[0], args[1], args[2]
    mode = args[9] if len(args) > 9 and isinstance(args[9], int) else 2
    has_bias = bool(args[12]) if len(args) > 12 else True
    gates, cell, adds_products = _RNN_CELL.get(mode, _RNN_CELL[2])
    gh = w_ih[0]
    hidden = gh // gates
    steps_batch = prod(x) // x[-1]  # T * B
    macs = steps_batch * gh * (w_ih[1] + w_hh[1])
    elementwise = steps_batch * (gh * (2 * int(has_bias) + int(adds_products)) + cell * hidden)
    return Cost(macs, 2 * macs + elementwise)


ENTRIES = (
    entry("mkldnn_rnn_layer", cost=mkldnn_rnn_layer_cost,
          backward="not counted yet: mkldnn_rnn_layer_backward is reported as unsupported "
                   "under --train (the meta device runs the unfused cell instead)"),
)
