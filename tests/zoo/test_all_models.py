"""Every registered model, tested the moment it is registered.

Builds on the meta device, traces at its default input with no unsupported op, gives
the expected output shape, and matches its published parameter count when it has one.
"""

import pytest

import cnnscope
from cnnscope.errors import InputTooSmallError
from cnnscope.zoo import list_models, model_info

MODELS = list_models()


@pytest.mark.parametrize("name", MODELS)
def test_traces_at_default_input(zoo_report, name):
    info = model_info(name)
    report = zoo_report(name)
    assert report.unsupported == (), f"{name}: ops without a cost formula: {report.unsupported}"
    out = report.output_shapes[0]
    assert out[0] == 1 and out[1] == info.num_classes, f"{name}: output {out}"
    assert report.totals.macs > 0 and report.totals.params > 0
    # Every parameter is charged to exactly one layer (or reported as unused).
    assert sum(r.params for r in report.layers) + report.unused_params == report.totals.params


@pytest.mark.parametrize("name", [n for n in MODELS if model_info(n).reference_params])
def test_params_match_published_reference(zoo_report, name):
    info = model_info(name)
    assert zoo_report(name).totals.params == info.reference_params, info.reference_source


# Published MAC counts (torchvision's weights metadata "_ops": GFLOPS in its convention of
# one multiply-add per op, 3 decimals, at the weights' crop size: 224, 299 for
# inception_v3; the "_ops" of each *_Weights.IMAGENET1K_V1 entry in torchvision/models/
# resnet.py, vgg.py, densenet.py, mobilenetv2.py and inception.py, copied by hand, never
# computed here) for every zoo model that is torchvision's architecture (same
# num_params as its IMAGENET1K_V1 weights; inception_v3 without the aux head). Not here:
# alexnet (the paper's two-tower 227 network, not torchvision's one-tower variant),
# googlenet (the paper's, with LRN and aux heads), the *_v1 ResNets (the paper's stride
# placement: He et al.'s Table 1 is checked in test_resnet.py and test_spec_resnet.py).
TORCHVISION_GMACS = {
    "resnet18": 1.814, "resnet34": 3.664, "resnet50": 4.089, "resnet101": 7.801,
    "resnet152": 11.514, "resnext50_32x4d": 4.230, "resnext101_32x8d": 16.414,
    "wide_resnet50_2": 11.398, "wide_resnet101_2": 22.753,
    "vgg11": 7.609, "vgg11_bn": 7.609, "vgg13": 11.308, "vgg13_bn": 11.308,
    "vgg16": 15.470, "vgg16_bn": 15.470, "vgg19": 19.632, "vgg19_bn": 19.632,
    "densenet121": 2.834, "densenet161": 7.728, "densenet169": 3.360, "densenet201": 4.291,
    "mobilenet_v2": 0.301, "inception_v3": 5.713,
}


@pytest.mark.parametrize("name", sorted(TORCHVISION_GMACS))
def test_macs_match_torchvision_published_gflops(zoo_report, name):
    assert name in MODELS, f"{name} is no longer registered"
    macs = zoo_report(name).totals.macs
    assert round(macs / 1e9, 3) == pytest.approx(TORCHVISION_GMACS[name], abs=0.0011)


def test_exact_macs_of_resnet50_and_vgg16(zoo_report):
    # The exact integers behind torchvision's 4.09 and 15.47 GFLOPS.
    assert zoo_report("resnet50").totals.macs == 4_089_184_256
    assert zoo_report("vgg16").totals.macs == 15_470_264_320


SMALL = ["lenet5", "alexnet", "vgg11", "resnet18", "googlenet", "densenet121"]


@pytest.mark.parametrize("name", [n for n in MODELS if n in SMALL] + [
    pytest.param(n, marks=pytest.mark.slow) for n in MODELS if n not in SMALL])
def test_smallest_input_is_tight(name):
    info = model_info(name)
    side = cnnscope.smallest_input(name)
    assert side is not None and side <= info.input_size[1], name
    c = info.input_size[0]
    if side > 1:
        with pytest.raises(InputTooSmallError):
            cnnscope.analyze(name, (c, side - 1, side - 1))
