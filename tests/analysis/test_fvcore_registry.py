"""fvcore's multiply-adds against cnnscope's MACs for every zoo model.

An independent count: fvcore's ``FlopCountAnalysis`` traces the model built on the CPU
with real weights through ``torch.jit`` (cnnscope traces on the meta device through its
own dispatch), and its conv / linear / matmul handlers count one per multiply-add, biases
excluded: cnnscope's MACs convention. Its rules for other ops (batch norm, upsampling,
adaptive pooling) are left out of the comparison; ``test_fvcore_check.py`` checks those
differences layer by layer.

fvcore needs real tensors (a CPU forward of each model through torch.jit): the whole
registry costs ~63 CPU s (``time`` of ``pytest tests/analysis/test_fvcore_registry.py
-m "slow or not slow"`` on this 2-core machine, load ~2; per model 0.03 s for NIN to
1.9 s for SENet-154), too much for a default run that aims at 30 s. So the default run
checks eight cheap models that cover the op mixes (plain conv/pool/fc, 1x1 stacks,
capsule matmuls, highway gates, residual adds, depthwise conv, squeeze-excitation;
~1.4 s together); the other 49 run under -m slow. All 57 agreed exactly when this was
written.
"""

from __future__ import annotations

import warnings

import pytest

from cnnscope.zoo import list_models, model_info

# One cheap model per op mix (0.03 to 0.5 s each in pytest --durations).
DEFAULT = {"lenet5", "nin", "capsnet", "zfnet", "highway", "resnet18", "mobilenet_v2",
           "se_resnet50"}


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
