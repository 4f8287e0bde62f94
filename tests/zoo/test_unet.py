"""U-Net (Ronneberger et al. 2015): parameter arithmetic, valid sizes, options."""

import pytest
import torch

from cnnscope.zoo import get_model, model_info
from cnnscope.zoo.unet import unet_output_size, valid_unet_sizes


def conv3(cin, cout):
    return cin * cout * 3 * 3 + cout


def double(cin, cout):
    return conv3(cin, cout) + conv3(cout, cout)


def upconv(cin):
    # 2x2 transposed conv halving the channels
    return cin * (cin // 2) * 2 * 2 + cin // 2


def unet_params(in_channels=1, num_classes=2, c=64):
    contracting = (
        double(in_channels, c) + double(c, 2 * c) + double(2 * c, 4 * c)
        + double(4 * c, 8 * c) + double(8 * c, 16 * c)
    )
    expanding = (
        upconv(16 * c) + double(16 * c, 8 * c)
        + upconv(8 * c) + double(8 * c, 4 * c)
        + upconv(4 * c) + double(4 * c, 2 * c)
        + upconv(2 * c) + double(2 * c, c)
    )
    return contracting + expanding + (c * num_classes + num_classes)


# The paper's network (in 1, 2 classes). The count the brief calls "widely cited",
# 31,031,685, is zhixuhao/unet's Keras model (model.py): same body, but it ends in a
# 3x3 conv 64 -> 2 with ReLU and a 1x1 conv 2 -> 1 with sigmoid instead of the paper's
# single 1x1 conv 64 -> 2. gchlebus's TF U-Net blog post prints 31030658 for the
# paper's layout.
PAPER_UNET = 31_030_658


def _build(**kwargs):
    with torch.device("meta"):
        return get_model("unet", **kwargs)


def _params(model):
    return sum(p.numel() for p in model.parameters())


def test_param_arithmetic_matches_paper_layout():
    assert unet_params() == PAPER_UNET
    keras_variant = unet_params() - (64 * 2 + 2) + conv3(64, 2) + (2 * 1 + 1)
    assert keras_variant == 31_031_685


def test_params_default():
    assert _params(_build()) == unet_params()


def test_conv_count():
    # "In total the network has 23 convolutional layers."
    model = _build()
    conv_types = (torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    convs = [m for m in model.modules() if isinstance(m, conv_types)]
    assert len(convs) == 23


def test_registry_metadata():
    info = model_info("unet")
    assert info.input_size == (1, 572, 572)
    assert info.num_classes == 2


def test_output_shape_572_meta():
    out = _build()(torch.empty(1, 1, 572, 572, device="meta"))
    assert out.shape == (1, 2, 388, 388)


def test_padding_keeps_size():
    model = _build(padding=True)
    assert _params(model) == unet_params()  # padding changes no weights
    out = model(torch.empty(2, 1, 512, 512, device="meta"))
    assert out.shape == (2, 2, 512, 512)


def test_in_channels_num_classes_base_channels():
    model = _build(in_channels=3, num_classes=5, base_channels=32)
    assert _params(model) == unet_params(in_channels=3, num_classes=5, c=32)
    out = model(torch.empty(1, 3, 572, 572, device="meta"))
    assert out.shape == (1, 5, 388, 388)


def test_output_size_function():
    # Paper Figure 1: 572 -> 570 -> 568, pool 284 ... bottom 32 -> 30 -> 28, up 56 ... 388.
    assert unet_output_size(572) == 388
    assert unet_output_size(512, padding=True) == 512
    with pytest.raises(ValueError, match="odd"):
        unet_output_size(570)  # 566 -> 283 -> 279 is odd before pool 2
    with pytest.raises(ValueError, match="input size 100: map of size 5 before pool 4 is odd"):
        unet_output_size(100)  # too small: the map is down to an odd 5 before the last pool


def test_valid_sizes():
    assert valid_unet_sizes(572) == [572]
    # Valid sizes step by 2**4 = 16 (16k + 60 for the unpadded net, from 188 upwards).
    assert valid_unet_sizes(570) == [556, 572]
    assert valid_unet_sizes(10) == [188]
    assert unet_output_size(188) == 4
    assert valid_unet_sizes(500, padding=True) == [496, 512]
    # depth 3: 572 -> 568, 284 -> 280, 140 -> 136, 68 -> bottom 64; up 128 -> 124,
    # 248 -> 244, 488 -> 484.
    assert valid_unet_sizes(572, depth=3) == [572]
    assert unet_output_size(572, depth=3) == ((64 * 2 - 4) * 2 - 4) * 2 - 4


def test_valid_size_runs_meta():
    size = valid_unet_sizes(600)[0]
    out = _build()(torch.empty(1, 1, size, size, device="meta"))
    assert out.shape[-1] == unet_output_size(size)
