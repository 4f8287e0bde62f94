"""Issue 23, Python API: a compared model is named by its name, its report or its summary,
wherever the Comparison asks for a model."""

import pytest

import cnnscope
from cnnscope.errors import CnnscopeError


@pytest.fixture(scope="module")
def comparison():
    return cnnscope.compare(["lenet5", "alexnet"])


def test_ratios_take_a_name_a_report_a_summary_or_a_position(comparison):
    lenet, alex = comparison.models
    # AlexNet's params over LeNet-5's, from the two traced totals
    expected = alex.totals.params / lenet.totals.params
    for m in ("alexnet", alex, 1, -1, cnnscope.analyze("alexnet")):
        assert comparison.ratios(m)["params"] == expected
    assert comparison.ratios("lenet5")["macs"] == 1.0
    assert comparison.ratio_line("alexnet").startswith("alexnet: ")
    assert comparison.ratio_line("alexnet").endswith(" of lenet5")


@pytest.mark.parametrize("m", ["resnet18", 2, object()])
def test_a_model_not_compared_is_a_clear_error(comparison, m):
    with pytest.raises(CnnscopeError, match="compared"):
        comparison.ratios(m)
