"""fvcore's multiply-adds against cnnscope's MACs for every zoo model, in the default run.

An independent count: fvcore's ``FlopCountAnalysis`` traces the model built on the CPU
through ``torch.jit`` (cnnscope traces on the meta device through its own dispatch), and
its conv / linear / matmul handlers count one per multiply-add, biases excluded:
cnnscope's MACs convention. Its rules for other ops (batch norm, upsampling, adaptive
pooling) are left out of the comparison; ``test_fvcore_check.py`` checks those
differences layer by layer.

fvcore needs real tensors, so each model runs one CPU forward under ``torch.jit``'s
tracer; that tracer, not the arithmetic, is most of the cost. Two savings that change
nothing fvcore counts:

- the weights are allocated, not initialised (built on the meta device, moved with
  ``to_empty`` and zeroed: a count depends on shapes only, and zeros keep denormals and
  NaNs out of the kernels). Random initialisation of VGG's 138 M weights alone costs
  more than its trace.
- the 224/299/572-pixel models run at about half their side (cnnscope traces the same
  smaller input for the comparison), except the three whose classifier pins the input
  (a fixed-size ``Linear`` after the features or a fixed 7x7 average pool).

fvcore's own whole-model totals are summed here (``by_operator``); the whole registry at
the models' own inputs, with real initialisation and through the per-module counts that
``--counter fvcore`` shows, still runs under ``-m slow``.
Measured (``/usr/bin/time`` of this file, 2-core machine, load ~2): 57 models at the
reduced inputs ~20 CPU s; at the default inputs ~30 s.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from cnnscope.zoo import list_models, model_info

# Classifier sized for the default input: a Linear over 6x6x256 features (alexnet,
# zfnet) or a 7x7 AvgPool before it (googlenet).
PINNED_INPUT = {"alexnet", "zfnet", "googlenet"}
# Default side -> the side checked by default: about half, and a size every model of
# that side accepts (hrnet's branches need a multiple of 32; unet's valid convolutions
# need 286 = 572 / 2).
SMALLER_SIDE = {224: 128, 299: 149, 572: 286}


def checked_input(name: str) -> tuple[int, ...]:
    c, h, w = model_info(name).input_size
    if name in PINNED_INPUT or h != w or h not in SMALLER_SIDE:
        return (c, h, w)
    return (c, SMALLER_SIDE[h], SMALLER_SIDE[h])


class _Uninitialised:
    """A model source whose CPU build allocates zeroed weights without initialising them."""

    def __init__(self, source):
        self.source, self.name = source, source.name

    def build(self, device: str):
        model = self.source.build("meta").to_empty(device=device)
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                tensor.zero_()
        return model


def fvcore_macs(name: str, input_size: tuple[int, ...]) -> int:
    """fvcore's whole-model total of the multiply-add operators, uninitialised weights."""
    import logging

    from fvcore.nn import FlopCountAnalysis

    from cnnscope.models import resolve
    from cnnscope.trace.fvcore_ops import MAC_OPERATORS

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    model = _Uninitialised(resolve(name)).build("cpu").eval()
    with warnings.catch_warnings():  # torch.jit's deprecation and tracer warnings
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(model, torch.zeros((1, *input_size)))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_operator = analysis.tracer_warnings("none").by_operator()
    return sum(n for op, n in by_operator.items() if op in MAC_OPERATORS)


def fvcore_counts_macs(name: str) -> int:
    """The per-module counts ``--counter fvcore`` makes (initialised weights), summed."""
    from cnnscope.models import resolve
    from cnnscope.trace.fvcore_counter import fvcore_counts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fvcore_counts(resolve(name), model_info(name).input_size, 1).mac_total


@pytest.mark.parametrize("name", list_models())
def test_fvcore_multiply_adds_equal_cnnscope_macs(name, zoo_report):
    size = checked_input(name)
    expected = zoo_report(name) if size == model_info(name).input_size else zoo_report(name, size)
    assert fvcore_macs(name, size) == expected.totals.macs


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_fvcore_multiply_adds_equal_cnnscope_macs_at_the_default_input(name, zoo_report):
    assert fvcore_counts_macs(name) == zoo_report(name).totals.macs


def test_the_smaller_input_is_smaller_wherever_the_model_allows():
    # A guard on the table above: only the pinned models keep a large default input.
    large = [n for n in list_models() if model_info(n).input_size[1] >= 128]
    kept = {n for n in large if checked_input(n) == model_info(n).input_size}
    assert kept == PINNED_INPUT
