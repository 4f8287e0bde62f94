"""fvcore's multiply-adds against cnnscope's MACs for every zoo model.

An independent count: fvcore's ``FlopCountAnalysis`` traces the model built on the CPU
with real weights through ``torch.jit`` (cnnscope traces on the meta device through its
own dispatch), and its conv / linear / matmul handlers count one per multiply-add, biases
excluded: cnnscope's MACs convention. Its rules for other ops (batch norm, upsampling,
adaptive pooling) are left out of the comparison; ``test_fvcore_check.py`` checks those
differences layer by layer.

fvcore needs real tensors (a CPU forward of each model, 0.1 s for LeNet-5 to ~14 s for
HRNet-W48 on 2 busy cores), so the default run checks the cheapest model of each family
(one per op mix: plain conv/pool/fc, grouped and depthwise conv, 1x1-heavy blocks,
dynamic routing matmuls, gates, transposed conv); the whole registry runs under -m slow.
"""

from __future__ import annotations

import warnings

import pytest

from cnnscope.zoo import list_models, model_info

# The cheapest model of each family (CPU seconds of the fvcore pass, measured on this
# 2-core machine under load: all below ~1.5 s).
DEFAULT = {"lenet5", "nin", "capsnet", "alexnet", "zfnet", "highway", "resnet18",
           "mobilenet_v2", "densenet_bc_100_12", "xception", "se_resnet50", "unet"}


def fvcore_macs(name: str) -> int:
    from cnnscope.models import resolve
    from cnnscope.trace.fvcore_counter import fvcore_counts

    with warnings.catch_warnings():  # torch.jit's deprecation and tracer warnings
        warnings.simplefilter("ignore")
        return fvcore_counts(resolve(name), model_info(name).input_size, 1).mac_total


@pytest.mark.parametrize("name", [n if n in DEFAULT else pytest.param(n, marks=pytest.mark.slow)
                                  for n in list_models()])
def test_fvcore_multiply_adds_equal_cnnscope_macs(name, zoo_report):
    assert fvcore_macs(name) == zoo_report(name).totals.macs


def test_the_default_subset_names_registered_models():
    assert DEFAULT <= set(list_models())
