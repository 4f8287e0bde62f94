"""``building_on("meta")`` takes shortcuts; the model it builds must be the same model.

The reference is PyTorch's own ``with torch.device("meta")``: every module, attribute,
parameter and buffer (names, shapes, dtypes, requires_grad, persistence) must match.
"""

import pytest
import torch
from torch import nn

from cnnscope.trace.meta import building_on
from cnnscope.zoo import get_model, list_models

QUICK = ["lenet5", "alexnet", "vgg16_bn", "resnet50", "densenet121", "googlenet", "inception_v3",
         "mobilenet_v2", "se_resnet50", "hrnetv2_w18", "unet", "capsnet", "highway"]


def _describe(net: nn.Module) -> list:
    out = []
    for name, m in net.named_modules():
        plain = {k: v for k, v in vars(m).items()
                 if not k.startswith("_") and not isinstance(v, (torch.Tensor, nn.Module))}
        out.append((name, type(m).__name__, repr(sorted(plain.items(), key=lambda kv: kv[0]))))
    for name, p in net.named_parameters():
        out.append(("param", name, tuple(p.shape), p.dtype, p.requires_grad, p.device.type))
    for name, b in net.named_buffers():
        out.append(("buffer", name, tuple(b.shape), b.dtype, b.device.type))
    out.append(("state_dict", tuple(net.state_dict().keys())))
    return out


def _assert_same_build(name: str) -> None:
    with torch.device("meta"):
        reference = get_model(name)
    with building_on("meta"):
        fast = get_model(name)
    assert _describe(fast) == _describe(reference)


@pytest.mark.parametrize("name", QUICK)
def test_fast_meta_build_equals_torch_device_meta(name):
    _assert_same_build(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in list_models() if n not in QUICK])
def test_fast_meta_build_equals_torch_device_meta_whole_zoo(name):
    _assert_same_build(name)


def test_shortcuts_are_undone_after_the_build():
    setattr_before = nn.Module.__setattr__
    reset_before = nn.Conv2d.reset_parameters
    with building_on("meta"):
        nn.Conv2d(3, 8, 3)
    assert nn.Module.__setattr__ is setattr_before
    assert nn.Conv2d.reset_parameters is reset_before
    # ... and a CPU build still initialises its weights.
    conv = nn.Conv2d(3, 8, 3)
    assert conv.weight.abs().sum() > 0


def test_plain_setattr_keeps_modules_rules():
    # Assigning a plain value over a parameter is still refused, as nn.Module does.
    with building_on("meta"):
        conv = nn.Conv2d(3, 8, 3)
        with pytest.raises(TypeError, match="cannot assign 'int' as parameter 'weight'"):
            conv.weight = 3
        conv.stride = (2, 2)
    assert conv.stride == (2, 2) and "stride" not in conv._parameters


def test_a_cpu_layer_made_during_a_meta_build_is_still_initialised():
    # Another thread may build a CPU model while a meta build runs: the shortcuts skip
    # only meta tensors. Kaiming-uniform bounds for Conv2d(16, 8, 3): 1/sqrt(16*3*3).
    init_before = torch.nn.init.kaiming_uniform_
    with building_on("meta"):
        with building_on("meta"):  # nested builds: shortcuts stay until the outer one ends
            pass
        assert torch.nn.init.kaiming_uniform_ is not init_before
        conv = nn.Conv2d(16, 8, 3, device="cpu")
        bn = nn.BatchNorm2d(8, device="cpu")
    assert torch.nn.init.kaiming_uniform_ is init_before
    bound = 1 / (16 * 3 * 3) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.std() > bound / 4
    assert torch.equal(bn.running_var, torch.ones(8)) and torch.equal(bn.weight.data, torch.ones(8))
