"""Every zoo family with a torchvision or timm equivalent runs its layers in the
reference implementation's order (issue 22 item 7: the zoo's ResNet ran ``downsample``
before ``conv1``, torchvision after ``bn3``). Counts alone cannot see this: the rows
and the memory peak can.

The order compared is the sequence of convolution and linear layers called in one eval
forward pass, each described by its weight's shape, so module names and the placement
of parameter-free layers (timm folds activations into its norm layers) do not matter.
The comparisons are slow (they need torchvision and timm); the check that the
comparison can fail runs by default.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from tests.optional import optional_import

tv = optional_import("torchvision")
timm = optional_import("timm") if tv is not None else None

TORCHVISION = ["alexnet", "densenet121", "googlenet", "inception_v3", "mobilenet_v2",
               "resnet18", "resnet34", "resnet50", "resnet101", "resnext50_32x4d",
               "wide_resnet50_2", "vgg11", "vgg16_bn"]
TIMM = {  # zoo name -> timm name
    "se_resnet50": "legacy_seresnet50",
    "se_resnext50_32x4d": "legacy_seresnext50_32x4d",
    "senet154": "legacy_senet154",
    "inception_v4": "inception_v4",
    "inception_resnet_v2": "inception_resnet_v2",
    "xception": "legacy_xception",
}


# Where the zoo follows the paper and torchvision does not, on purpose, the shapes differ
# but the order must not: compare only the part of the weight shape they share.
SHARED = {
    # the paper's 96-256-384-384-256 filters; torchvision: "one weird trick"'s 64-192-...
    "alexnet": lambda shape: shape[2:],
    # the paper's 5x5 branch; torchvision keeps a 3x3 there (its weights were trained so)
    "googlenet": lambda shape: shape[:2],
}


def call_order(model: nn.Module, size: tuple[int, ...], shared=tuple) -> list[tuple[str, tuple]]:
    """(kind, weight shape) of each convolution or linear layer, in call order."""
    calls = []
    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            kind = "linear" if isinstance(m, nn.Linear) else "conv"
            handles.append(m.register_forward_pre_hook(
                lambda mod, args, kind=kind: calls.append((kind, shared(tuple(mod.weight.shape))))))
    try:
        with torch.no_grad():
            model.eval()(torch.empty(1, *size, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return calls


def _zoo(name):
    import cnnscope

    source = cnnscope.resolve(name)
    return source.build("meta"), tuple(source.input_size)


def test_call_order_sees_the_old_resnet_order():
    # The check can fail: a block that runs its projection shortcut first is caught.
    from cnnscope.zoo.resnet import BasicBlock

    down = nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False), nn.BatchNorm2d(8))
    block = BasicBlock(4, 8, stride=2, downsample=down).to("meta")
    order = call_order(block, (4, 8, 8))
    assert order == [("conv", (8, 4, 3, 3)), ("conv", (8, 8, 3, 3)), ("conv", (8, 4, 1, 1))]

    class ShortcutFirst(BasicBlock):
        def forward(self, x):
            identity = self.downsample(x)
            return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + identity)

    first = ShortcutFirst(4, 8, stride=2, downsample=down).to("meta")
    assert call_order(first, (4, 8, 8)) != order


@pytest.mark.slow
@pytest.mark.skipif(tv is None, reason="torchvision is not installed or does not load")
@pytest.mark.parametrize("name", TORCHVISION)
def test_zoo_runs_layers_in_torchvision_order(name):
    model, size = _zoo(name)
    with torch.device("meta"):
        reference = tv.models.get_model(name, weights=None)
    shared = SHARED.get(name, tuple)
    assert call_order(model, size, shared) == call_order(reference, size, shared)


@pytest.mark.slow
@pytest.mark.skipif(timm is None, reason="timm is not installed or does not load")
@pytest.mark.parametrize("name, timm_name", sorted(TIMM.items()))
def test_zoo_runs_layers_in_timm_order(name, timm_name):
    model, size = _zoo(name)
    with torch.device("meta"):
        reference = timm.create_model(timm_name, pretrained=False)
    assert call_order(model, size) == call_order(reference, size)
