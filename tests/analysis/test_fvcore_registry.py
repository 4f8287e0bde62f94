"""fvcore's multiply-adds against cnnscope's MACs for every zoo model, in the default run.

An independent count: fvcore's ``FlopCountAnalysis`` traces the model built on the CPU
through ``torch.jit`` (cnnscope traces on the meta device through its own dispatch), and
its conv / linear / matmul handlers count one per multiply-add, biases excluded:
cnnscope's MACs convention. Its rules for other ops (batch norm, upsampling, adaptive
pooling) are left out of the comparison; ``test_fvcore_check.py`` checks those
differences layer by layer.

fvcore's totals at each model's default input are recorded in ``tests/data/fvcore_macs.json``
by ``tests/analysis/fvcore_reference.py`` (fvcore's own numbers: the script calls fvcore,
not cnnscope). The default run checks every zoo model against the file at the cost of
cnnscope's meta traces; ``-m slow`` recounts every entry with fvcore (about 30 CPU s:
torch.jit's tracer on real tensors) so the file cannot drift from fvcore, and also goes
through the per-module counts that ``--counter fvcore`` shows.
"""

from __future__ import annotations

import warnings

import pytest

from cnnscope.zoo import list_models, model_info
from tests.analysis.fvcore_reference import fvcore_macs, load

REFERENCE = load()["models"]


def test_every_zoo_model_has_an_fvcore_count_at_its_default_input():
    # A new zoo model must be counted by fvcore too: regenerate the file (see fvcore_reference).
    assert set(REFERENCE) == set(list_models())
    for name, entry in REFERENCE.items():
        assert tuple(entry["input"]) == tuple(model_info(name).input_size), name


@pytest.mark.parametrize("name", list_models())
def test_fvcore_multiply_adds_equal_cnnscope_macs(name, zoo_report):
    assert zoo_report(name).totals.macs == REFERENCE[name]["fvcore_macs"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_the_recorded_counts_are_what_fvcore_counts_now(name):
    entry = REFERENCE[name]
    assert fvcore_macs(name, tuple(entry["input"])) == entry["fvcore_macs"]


@pytest.mark.slow
@pytest.mark.parametrize("name", list_models())
def test_fvcore_per_module_counts_equal_cnnscope_macs(name, zoo_report):
    # The path --counter fvcore takes: initialised weights, per-module counts summed.
    from cnnscope.models import resolve
    from cnnscope.trace.fvcore_counter import fvcore_counts

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        total = fvcore_counts(resolve(name), model_info(name).input_size, 1).mac_total
    assert total == zoo_report(name).totals.macs
