"""Receptive fields: hand arithmetic for sequential nets, gradients for multi-branch nets.

Two independent sources of expected values:

* Sequential nets (VGG, AlexNet, the main path of ResNet/GoogLeNet/DenseNet): the
  textbook recurrence written out here from the papers' layer tables,
  ``r += (k - 1) * j; P += p * j; j *= s`` with r = field, j = jump, P = padding.
* Multi-branch and upsampling nets: a real forward pass on the CPU in float64 with every
  weight positive (and average instead of max pooling, so that every window passes
  gradient). The gradient of one output unit with respect to the input is then nonzero
  exactly on the pixels the unit depends on; its first and last nonzero row are the
  unit's field. Units are taken away from the borders, where zero padding would cut
  the field short.
"""

from __future__ import annotations

import copy
from fractions import Fraction

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnscope
from cnnscope.analysis.receptive_field import (
    GLOBAL,
    AxisField,
    Window,
    last_feature_map_rf,
    receptive_fields,
)

# ---------------------------------------------------------------------- helpers


def chain(layers, r=1, j=1, p_eff=0):
    """The textbook recurrence over (k, s, p) rows; returns (r, j, P) after each row."""
    out = []
    for k, s, p in layers:
        r += (k - 1) * j
        p_eff += p * j
        j *= s
        out.append((r, j, p_eff))
    return out


def fields_of(model_or_name, input_size):
    if isinstance(model_or_name, nn.Module):  # traced on meta in float32, like any model
        model_or_name = copy.deepcopy(model_or_name).float()
    return receptive_fields(cnnscope.analyze(model_or_name, input_size))


def positive(model: nn.Module) -> nn.Module:
    """float64, eval, every parameter positive (scaled by fan-in to keep values tame)."""
    torch.manual_seed(0)
    model = model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_((torch.rand_like(p) * 0.5 + 0.5) / fan_in)
    return model


def swap_max_for_avg(model: nn.Module) -> nn.Module:
    """Max pooling passes gradient to one pixel per window; the same window averaged
    passes it to all, with the same geometry."""
    for name, m in list(model.named_modules()):
        for child_name, child in list(m.named_children()):
            if isinstance(child, nn.MaxPool2d):
                setattr(m, child_name, nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                                    ceil_mode=child.ceil_mode))
            elif isinstance(child, nn.LocalResponseNorm):
                setattr(m, child_name, nn.Identity())  # pointwise in space; mixed-sign gradient
    return model


class _Reached(Exception):
    """Ends a forward pass at the probed layer."""


def measured_spans(model, input_size, units, axis=0, layer=None, other=None):
    """(first, last) input pixel with a nonzero gradient, for each position along ``axis``.

    ``layer`` names a module whose output is probed (default: the model output);
    ``other`` is the unit's index along the other axis (default: the middle).
    """
    x = torch.ones((1, *input_size), dtype=torch.float64, requires_grad=True)
    captured = {}
    if layer is not None:
        module = dict(model.named_modules())[layer]

        def stop(m, a, out):  # the layers after it do not change its gradients: skip them
            captured["y"] = out
            raise _Reached

        handle = module.register_forward_hook(stop)
        try:
            model(x)
        except _Reached:
            pass
        finally:
            handle.remove()
        y = captured["y"]
    else:
        y = model(x)
    spans = []
    for u in units:
        # All channels at one position: a concatenation's channels come from branches with
        # different fields, and the analysis reports their hull.
        idx = [0, slice(None), y.shape[2] // 2, y.shape[3] // 2]
        idx[2 + axis] = u
        if other is not None:
            idx[3 - axis] = other
        (g,) = torch.autograd.grad(y[tuple(idx)].sum(), x, retain_graph=True)
        line = g[0].abs().sum(dim=0).sum(dim=1 - axis)
        nz = torch.nonzero(line > 0).flatten()
        spans.append((int(nz.min()), int(nz.max())))
    return spans


def analysed_spans(field: AxisField, units):
    return [field.span(u) for u in units]


def check_exact(model, input_size, record_name, units, axis=0, layer=None):
    """Every unit's measured field equals the analysed one; returns the analysed field."""
    model = positive(model)
    rf = fields_of(model, input_size)
    f = rf.by_name(record_name).axes[axis]
    assert isinstance(f, AxisField), rf.by_name(record_name)
    assert measured_spans(model, input_size, units, axis, layer) == analysed_spans(f, units)
    return f


# ---------------------------------------------------------------------- the data structure


def test_single_layers_match_the_recurrence():
    f = AxisField.identity().through(Window.conv(3, 1, 1))
    assert (f.size, f.jump, f.padding, f.centre) == (3, 1, 1, 0)
    f = AxisField.identity().through(Window.conv(7, 2, 3)).through(Window.conv(3, 2, 1))
    # r = 7 + (3-1)*2 = 11, j = 2*2 = 4, P = 3 + 1*2 = 5, centre = -5 + (11-1)/2 = 0
    assert (f.size, f.jump, f.padding, f.centre) == (11, 4, 5, 0)
    f = AxisField.identity().through(Window.conv(3, 1, 2, d=2))
    assert (f.size, f.padding) == (1 + 2 * (3 - 1), 2)  # k_eff = d(k-1)+1 = 5


def test_transposed_conv_and_nearest_upsampling_have_fractional_stride():
    # A transposed conv k=2 s=2 reads one input unit per output unit: the field does not
    # grow, the jump halves, and the output grid sits half an input unit around each input.
    f = AxisField.identity().through(Window.conv(2, 2)).through(Window.transposed(2, 2))
    assert f.jump == Fraction(1) and f.size == 2
    up = AxisField.identity().through(Window.resample(4, 8, "nearest"))
    assert up.jump == Fraction(1, 2) and up.size == 1
    assert up.centre == Fraction(-1, 4)  # (0.5/2 - 0.5): the align_corners=False grid
    assert up.jitter == Fraction(1, 4)


def test_crop_and_pad_shift_the_field():
    base = AxisField.identity().through(Window.conv(3, 2, 1))  # j = 2, P = 1
    assert base.through(Window.offset(4)).padding == 1 - 4 * 2
    assert base.through(Window.offset(-3)).padding == 1 + 3 * 2


# ---------------------------------------------------------------------- sequential, by hand

# VGG-16 (configuration D): 13 3x3 convs (stride 1, pad 1) in 5 stages, a 2x2/2 max pool
# after each stage.
VGG16_ROWS = ([(3, 1, 1)] * 2 + [(2, 2, 0)] + [(3, 1, 1)] * 2 + [(2, 2, 0)]
              + ([(3, 1, 1)] * 3 + [(2, 2, 0)]) * 3)


def test_vgg16_conv5_3_is_196_and_pool5_212_by_hand():
    rows = chain(VGG16_ROWS)
    assert rows[-2][:2] == (196, 16)  # conv5_3
    assert rows[-1][:2] == (212, 32)  # pool5
    rf = fields_of("vgg16", (3, 224, 224))
    conv5_3, pool5 = rf.by_name("features.28"), rf.by_name("features.30")
    assert conv5_3.receptive_field == (rows[-2][0],) * 2
    assert conv5_3.effective_stride == (rows[-2][1],) * 2
    assert conv5_3.effective_padding == (rows[-2][2],) * 2
    assert pool5.receptive_field == (212, 212) and pool5.effective_stride == (32, 32)
    assert pool5.effective_padding == (rows[-1][2],) * 2
    # Every conv and pool row, in order.
    windows = [f for f in rf.layers if f.type in ("Conv2d", "MaxPool2d")]
    assert [(f.receptive_field[0], f.effective_stride[0], f.effective_padding[0])
            for f in windows] == rows
    # The classifier sees everything; the summary stops at the last spatial map.
    assert rf.by_name("classifier.0").status == GLOBAL
    assert rf.final.receptive_field == (212, 212)
    assert last_feature_map_rf(cnnscope.analyze("vgg16")) == (212, 212)


def test_alexnet_conv5_is_163_by_hand():
    # Krizhevsky et al. 2012 (227 input): conv1 11/4, pool 3/2, conv2 5 pad 2, pool 3/2,
    # conv3-5 3 pad 1, pool 3/2.
    rows = chain([(11, 4, 0), (3, 2, 0), (5, 1, 2), (3, 2, 0), (3, 1, 1), (3, 1, 1), (3, 1, 1),
                  (3, 2, 0)])
    # 11; 11+2*4 = 19; 19+4*8 = 51; 51+2*8 = 67; 67+2*16 = 99, 131, 163; 163+2*16 = 195
    assert [r for r, _, _ in rows] == [11, 19, 51, 67, 99, 131, 163, 195]
    rf = fields_of("alexnet", (3, 227, 227))
    assert rf.by_name("features.12").receptive_field == (163, 163)
    assert rf.by_name("features.12").effective_stride == (16, 16)
    assert rf.final.name == "features.14"
    assert (rf.final.receptive_field, rf.final.effective_stride, rf.final.effective_padding) \
        == ((195, 195), (32, 32), (rows[-1][2],) * 2)


def _resnet50_rows(stride_in_3x3: bool):
    """ResNet-50 longest path (He et al. Table 1): conv1 7/2 p3, max pool 3/2 p1, then per
    bottleneck 1x1, 3x3 p1, 1x1; the first block of stages 3-5 has stride 2, on the 3x3
    (torchvision "V1.5") or on the first 1x1 (the paper, resnet50_v1)."""
    rows = [(7, 2, 3), (3, 2, 1)]
    for stage, blocks in enumerate([3, 4, 6, 3]):
        for b in range(blocks):
            s = 2 if stage > 0 and b == 0 else 1
            if stride_in_3x3:
                rows += [(1, 1, 0), (3, s, 1), (1, 1, 0)]
            else:
                rows += [(1, s, 0), (3, 1, 1), (1, 1, 0)]
    return rows


@pytest.mark.parametrize("name, v15", [("resnet50", True), ("resnet50_v1", False)])
def test_resnet50_final_field_by_hand(name, v15):
    r, j, p = chain(_resnet50_rows(v15))[-1]
    # V1.5: 11 after the stem, +3*2*4 (layer1) = 35, +2*4 + 3*2*8 = 91, +2*8 + 5*2*16 = 267,
    # +2*16 + 2*2*32 = 427.
    assert (r, j) == ((427, 32) if v15 else (483, 32))
    rf = fields_of(name, (3, 224, 224))
    assert rf.final.name == "layer4.2.relu#3"
    assert rf.final.receptive_field == (r, r)
    assert rf.final.effective_stride == (j, j)
    assert rf.final.effective_padding == (p, p)
    assert rf.final.centre == (Fraction(r - 1, 2) - p,) * 2
    assert not rf.warnings  # projection shortcuts are aligned with the main path


def test_googlenet_longest_path_by_hand():
    # Szegedy et al. Table 1: 7x7/2, 3x3/2 pool, 1x1, 3x3, 3x3/2 pool, inception 3a-3b
    # (largest branch 5x5), pool, 4a-4e, pool, 5a-5b, then 7x7 average pool (global here).
    rows = ([(7, 2, 3), (3, 2, 0), (1, 1, 0), (3, 1, 1), (3, 2, 0)] + [(5, 1, 2)] * 2
            + [(3, 2, 0)] + [(5, 1, 2)] * 5 + [(3, 2, 0)] + [(5, 1, 2)] * 2)
    r, j, _ = chain(rows)[-1]
    assert (r, j) == (715, 32)
    rf = fields_of("googlenet", (3, 224, 224))
    assert rf.final.name == "inception5b.cat"
    assert rf.final.receptive_field == (r, r) and rf.final.effective_stride == (j, j)
    assert rf.by_name("avgpool").status == GLOBAL  # a 7x7 window on the 7x7 map
    assert not rf.warnings


def test_densenet121_longest_path_by_hand():
    # Huang et al. Table 1: conv 7x7/2, 3x3/2 max pool, dense blocks of (1x1, 3x3) layers
    # (6, 12, 24, 16) with transitions (1x1 conv, 2x2/2 average pool) between them.
    rows = [(7, 2, 3), (3, 2, 1)]
    for i, n in enumerate((6, 12, 24, 16)):
        rows += [(1, 1, 0), (3, 1, 1)] * n
        if i < 3:
            rows += [(1, 1, 0), (2, 2, 0)]
    r, j, _ = chain(rows)[-1]
    assert (r, j) == (2071, 32)
    rf = fields_of("densenet121", (3, 224, 224))
    assert rf.final.receptive_field == (r, r) and rf.final.effective_stride == (j, j)
    assert not rf.warnings


def test_inception_v3_asymmetric_kernels_per_axis():
    rf = fields_of("inception_v3", (3, 299, 299))
    before = rf.by_name("Mixed_6b.branch7x7_1.conv")
    one_by_seven = rf.by_name("Mixed_6b.branch7x7_2.conv")
    seven_by_one = rf.by_name("Mixed_6b.branch7x7_3.conv")
    r, j = before.receptive_field[0], before.effective_stride[0]
    # A 1x7 kernel grows the field along W only, by (7-1)*j; the 7x1 after it along H.
    assert one_by_seven.receptive_field == (r, r + 6 * j)
    assert seven_by_one.receptive_field == (r + 6 * j, r + 6 * j)
    assert not rf.warnings


def test_global_pooling_and_fc_stop_the_field():
    rf = fields_of("resnet18", (3, 224, 224))
    assert rf.by_name("avgpool").status == GLOBAL
    assert rf.by_name("fc").status == GLOBAL
    assert rf.by_name("fc").receptive_field == (None, None)
    d = rf.to_dict()
    assert d["final"]["name"] == "layer4.1.relu#2"
    assert set(d["final"]) >= {"receptive_field", "effective_stride", "effective_padding"}
    assert all({"name", "receptive_field", "effective_stride", "effective_padding"} <= set(row)
               for row in d["layers"])


# ---------------------------------------------------------------------- multi-branch, by gradient


class InceptionNet(nn.Module):
    """A stem, then 1x1 / 1x1-3x3 / 1x1-5x5 / 3x3 pool-1x1 branches concatenated."""

    def __init__(self, c=4):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 7, 2, 3)
        self.pool = nn.AvgPool2d(3, 2, 1)
        self.b1 = nn.Conv2d(c, c, 1)
        self.b2 = nn.Sequential(nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(c, c, 1), nn.Conv2d(c, c, 5, padding=2))
        self.b4 = nn.Sequential(nn.AvgPool2d(3, 1, 1), nn.Conv2d(c, c, 1))
        self.head = nn.Conv2d(4 * c, 2, 1)

    def forward(self, x):
        x = self.pool(torch.relu(self.stem(x)))
        x = torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)
        return self.head(x)


def test_inception_concatenation_against_gradients():
    units = range(6, 10)
    f = check_exact(InceptionNet(), (1, 64, 64), "head", units)
    # stem 7/2 p3 -> pool 3/2 p1 -> 5x5 branch: 7, 11, 11 + 4*4 = 27; P = 3 + 2 + 2*4 = 13
    assert (f.size, f.jump, f.padding) == (27, 4, 13)


class ResidualNet(nn.Module):
    """A residual block with a strided 3x3 main path and a strided 1x1 projection."""

    def __init__(self, c=3):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1)
        self.conv1 = nn.Conv2d(c, c, 3, 2, 1)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1)
        self.proj = nn.Conv2d(c, c, 1, 2)
        self.head = nn.Conv2d(c, 1, 3, padding=1)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        y = self.conv2(torch.relu(self.conv1(x))) + self.proj(x)
        return self.head(torch.relu(y))


def test_residual_block_with_projection_against_gradients():
    f = check_exact(ResidualNet(), (1, 40, 40), "head", range(8, 12))
    # main path: 3, 3+2 = 5 (j 2), 5+4 = 9, head 9+4 = 13
    assert (f.size, f.jump, f.padding) == (13, 2, 1 + 1 + 2 + 2)
    rf = fields_of(ResidualNet(), (1, 40, 40))
    assert not rf.warnings  # centres of both paths coincide


class DenseNet(nn.Module):
    """Three densely connected 3x3 layers, a 2x2 average-pool transition, a 3x3 head."""

    def __init__(self, c=2, growth=2):
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1)
        self.layers = nn.ModuleList(nn.Conv2d(c + i * growth, growth, 3, padding=1) for i in range(3))
        self.trans = nn.AvgPool2d(2, 2)
        self.head = nn.Conv2d(c + 3 * growth, 1, 3, padding=1)

    def forward(self, x):
        x = self.stem(x)
        for layer in self.layers:
            x = torch.cat([x, layer(x)], 1)
        return self.head(self.trans(x))


def test_dense_block_against_gradients():
    f = check_exact(DenseNet(), (1, 32, 32), "head", range(6, 10))
    # 3 + 2*3 = 9 after the block, 10 after the 2x2 pool (j 2), 14 after the head
    assert (f.size, f.jump) == (14, 2)


class DilatedNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 2, 3, padding=1)
        self.c2 = nn.Conv2d(2, 2, 3, padding=2, dilation=2)
        self.c3 = nn.Conv2d(2, 1, 3, padding=4, dilation=4)

    def forward(self, x):
        return self.c3(self.c2(self.c1(x)))


def test_dilated_convolutions_against_gradients():
    f = check_exact(DilatedNet(), (1, 40, 40), "c3", range(18, 22))
    assert f.size == 1 + 2 + 4 + 8  # k_eff - 1 = d(k-1): 2, 4, 8


class UpNet(nn.Module):
    """Encoder to stride 4, then a transposed conv, a skip addition, nearest or bilinear
    upsampling and a 3x3 conv."""

    def __init__(self, mode="nearest", tk=4, tp=1, top=0):
        super().__init__()
        self.mode = mode
        self.e1 = nn.Conv2d(1, 2, 3, 2, 1)
        self.e2 = nn.Conv2d(2, 2, 3, 2, 1)
        self.up = nn.ConvTranspose2d(2, 2, tk, 2, tp, output_padding=top)
        self.head = nn.Conv2d(2, 1, 3, padding=1)

    def forward(self, x):
        s = self.e1(x)
        y = self.up(self.e2(s)) + s
        y = F.interpolate(y, scale_factor=2, mode=self.mode,
                          **({} if self.mode == "nearest" else {"align_corners": False}))
        return self.head(y)


@pytest.mark.parametrize("mode, tk, tp, top", [("nearest", 4, 1, 0), ("bilinear", 4, 1, 0),
                                               ("nearest", 3, 1, 1), ("nearest", 2, 0, 0)])
def test_transposed_conv_and_upsampling_against_gradients(mode, tk, tp, top):
    # Fields after upsampling are not evenly spaced; compare every unit of two periods.
    units = range(28, 36)
    f = check_exact(UpNet(mode, tk, tp, top), (1, 64, 64), "head", units)
    assert f.jump == Fraction(1, 1)  # stride 4 encoder, two x2 upsamplings
    # The reported field is the largest one of any unit.
    spans = [f.span(u) for u in units]
    assert f.size == max(hi - lo + 1 for lo, hi in spans)


def test_unet_every_output_unit_against_gradients():
    """The zoo U-Net (narrow, average pools): unpadded convs, so no unit touches padding
    and every output unit can be compared."""
    from cnnscope.zoo.unet import UNet

    model = positive(swap_max_for_avg(UNet(num_classes=1, in_channels=1, base_channels=2)))
    size = 124 + 16 * 5  # a valid U-Net size (see test_shapes): output 204 - 184 = 20
    units = range(20)
    # check_exact's steps, spelled out so that the 20 backward passes run once, not twice.
    rf = fields_of(model, (1, size, size))
    f = rf.by_name("out_conv").axes[0]
    assert isinstance(f, AxisField), rf.by_name("out_conv")
    measured = measured_spans(model, (1, size, size), units)
    assert measured == analysed_spans(f, units)
    sizes = [hi - lo + 1 for lo, hi in measured]
    # Fields differ from unit to unit after the up-convolutions: 188 or 204 pixels. A
    # recurrence on one (r, j) per layer cannot see that: keeping r at each 2x2
    # up-convolution and halving j, it says 200 for every unit.
    assert (min(sizes), max(sizes)) == (188, 204) == (f.min_size, f.size)
    assert f.jump == 1 and f.padding == 0
    assert f.centre == Fraction(184, 2)  # the paper's overlap tile: 92-pixel border
    assert not rf.warnings  # crops are centred at a valid size


def test_unet_crops_misaligned_at_an_invalid_size():
    from cnnscope.zoo.unet import valid_unet_sizes

    for size, valid in ((556, True), (572, True), (562, False), (570, False)):
        assert (valid_unet_sizes(size) == [size]) is valid
        rf = fields_of("unet", (1, size, size))
        assert (not rf.warnings) is valid, (size, rf.warnings)
        if not valid:
            assert all("not aligned" in w for w in rf.warnings)


class SqueezeExcite(nn.Module):
    def __init__(self, c=4):
        super().__init__()
        self.conv = nn.Conv2d(1, c, 3, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c, c)
        self.head = nn.Conv2d(c, 1, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        gate = torch.sigmoid(self.fc(self.gap(y).flatten(1)))[:, :, None, None]
        return self.head(y * gate)


def test_squeeze_excitation_gate_is_reported_as_global_context():
    model = positive(SqueezeExcite())
    rf = fields_of(model, (1, 24, 24))
    head = rf.by_name("head")
    # The local field (two 3x3 convs) is reported, flagged with the global context ...
    assert head.receptive_field == (5, 5) and head.global_context
    assert rf.final.name == "head" and rf.final.global_context
    # ... because the gradient of one unit does reach every input pixel.
    assert measured_spans(model, (1, 24, 24), [12]) == [(0, 23)]


class AsymmetricNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 2, (1, 7), padding=(0, 3))
        self.b = nn.Conv2d(2, 2, (7, 1), padding=(3, 0))
        self.c = nn.Conv2d(2, 1, (3, 5), stride=(2, 1), padding=(1, 2))

    def forward(self, x):
        return self.c(self.b(self.a(x)))


def test_non_square_kernels_against_gradients_per_axis():
    model = positive(AsymmetricNet())
    rf = fields_of(model, (1, 40, 40))
    assert rf.by_name("a").receptive_field == (1, 7)
    assert rf.by_name("c").receptive_field == (7 + 2, 7 + 4)
    assert rf.by_name("c").effective_stride == (2, 1)
    for axis in (0, 1):
        units = range(8, 12)
        f = rf.by_name("c").axes[axis]
        assert measured_spans(model, (1, 40, 40), units, axis) == analysed_spans(f, units)


class OddPools(nn.Module):
    """ceil_mode pooling, adaptive pooling to uneven bins, a crop and a pad."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.pool = nn.AvgPool2d(3, 2, ceil_mode=True)
        self.adapt = nn.AdaptiveAvgPool2d(5)

    def forward(self, x):
        y = self.pool(self.conv(x))  # 25 -> 12 (ceil)
        y = F.pad(y[:, :, 1:, 1:], (2, 2, 2, 2))  # crop 1, pad 2: 15
        return self.adapt(y)


def test_ceil_mode_adaptive_crop_and_pad_against_gradients():
    model = positive(OddPools())
    rf = fields_of(model, (1, 25, 25))
    f = rf.by_name("adapt").axes[0]
    # Units 1-3 read only real pixels (unit 0 and 4 reach into the zero pad).
    units = [1, 2, 3]
    assert measured_spans(model, (1, 25, 25), units) == analysed_spans(f, units)


def test_resampling_at_a_non_integer_ratio_against_gradients():
    class Resize(nn.Module):
        def __init__(self, mode):
            super().__init__()
            self.mode = mode
            self.conv = nn.Conv2d(1, 1, 3, padding=1)

        def forward(self, x):
            kw = {} if self.mode.startswith("nearest") else {"align_corners": False}
            return F.interpolate(self.conv(x), size=(25, 25), mode=self.mode, **kw)

    # nearest reads src floor(o * 10/25), nearest-exact floor((o + 1/2) * 10/25): the same
    # ratio, different taps, so the two must not be confused.
    for mode in ("nearest", "nearest-exact", "bilinear", "bicubic"):
        model = positive(Resize(mode))
        rf = fields_of(model, (1, 10, 10))
        f = rf.layers[-1].axes[0]
        assert f.jump == Fraction(10, 25)
        units = range(6, 19)  # bicubic taps of these stay clear of the conv's padding
        assert measured_spans(model, (1, 10, 10), units) == analysed_spans(f, units), mode


@pytest.mark.parametrize("shuffle, input_size", [
    (nn.PixelShuffle(2), (4, 8, 8)),  # 8 -> 16: output u reads input u // 2
    (nn.PixelUnshuffle(2), (1, 16, 16)),  # 16 -> 8: output u gathers inputs 2u and 2u + 1
])
def test_pixel_shuffle_and_unshuffle_against_gradients(shuffle, input_size):
    c = input_size[0]
    model = nn.Sequential(nn.Conv2d(c, c, 3, padding=1), shuffle)
    units = range(2, 6)  # clear of the conv's zero padding
    check_exact(model, input_size, "1", units)


def test_misaligned_branches_are_reported():
    class Shifted(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Conv2d(1, 1, 3, padding=1)
            self.b = nn.Conv2d(1, 1, 3, padding=0)

        def forward(self, x):
            return self.a(x)[:, :, :-2, :-2] + self.b(x)  # same size, centres 1 px apart

    rf = fields_of(Shifted(), (1, 16, 16))
    add = rf.layers[-1]
    assert add.warnings and "centres differ by 1 px" in add.warnings[0]
    assert add.receptive_field == (4, 4)  # the hull of [-1, 1] and [0, 2]


def test_googlenet_inception3b_against_gradients():
    """A real zoo model: GoogLeNet up to inception 3b (max pools averaged, LRN removed)."""
    model = swap_max_for_avg(cnnscope.zoo.get_model("googlenet"))
    model = positive(model)
    rf = fields_of(model, (3, 224, 224))
    f = rf.by_name("inception3b.cat").axes[0]
    units = [13, 14]  # 28x28 map: the middle units see only real pixels
    assert measured_spans(model, (3, 224, 224), units, layer="inception3b") == \
        analysed_spans(f, units)
    assert (f.size, f.jump) == (91, 8)  # 27 after pool2, +2*(5-1)*8 for 3a and 3b


class AlignCorners(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        return F.interpolate(self.conv(x), size=(27, 27), mode="bilinear", align_corners=True)


def test_align_corners_resampling_window_against_gradients():
    # The window arithmetic itself (no tracer): src = o * (n_in - 1) / (n_out - 1).
    model = positive(AlignCorners())
    f = AxisField.identity().through(Window.conv(3, 1, 1)).through(
        Window.resample(14, 27, "bilinear", align_corners=True))
    assert f.jump == Fraction(13, 26)
    units = range(2, 25)
    assert measured_spans(model, (1, 14, 14), units) == analysed_spans(f, units)


def test_align_corners_through_the_tracer():
    model = positive(AlignCorners())
    rf = fields_of(model, (1, 14, 14))
    assert not rf.warnings  # the tracer records align_corners
    f = rf.layers[-1].axes[0]
    units = range(2, 25)
    assert measured_spans(model, (1, 14, 14), units) == analysed_spans(f, units)


class StretchedSkip(nn.Module):
    """align_corners=True upsampling added to a skip: the two grids differ (13/27 vs 1/2)."""

    def __init__(self):
        super().__init__()
        self.down = nn.Conv2d(1, 1, 3, 2, 1)
        self.skip = nn.Conv2d(1, 1, 3, padding=1)
        self.head = nn.Conv2d(1, 1, 3, padding=1)

    def forward(self, x):
        s = self.skip(x)
        up = F.interpolate(self.down(s), size=s.shape[-2:], mode="bilinear", align_corners=True)
        return self.head(up + s)


def test_merge_of_different_strides_is_reported_and_bounds_every_unit():
    model = positive(StretchedSkip())
    rf = fields_of(model, (1, 28, 28))
    assert any("different strides" in w for w in rf.warnings)
    f = rf.by_name("head").axes[0]
    assert f.jump == 1  # the skip's regular grid is kept
    units = range(3, 25)
    for (lo, hi), (alo, ahi) in zip(measured_spans(model, (1, 28, 28), units),
                                    analysed_spans(f, units)):
        assert alo <= lo and hi <= ahi  # a bound: every unit's true field fits inside


def test_transposed_conv_units_that_read_nothing_are_reported():
    class Holes(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.ConvTranspose2d(1, 1, 3, stride=2, dilation=2)  # odd outputs read nothing

        def forward(self, x):
            return self.up(x)

    rf = fields_of(Holes(), (1, 8, 8))
    assert rf.layers[-1].status == "unknown"
    assert any("read no input" in w for w in rf.warnings)


class ChannelsLast(nn.Module):
    """ConvNeXt-style: a permute to NHWC, LayerNorm and Linear over channels, and back."""

    def __init__(self, c=3):
        super().__init__()
        self.conv = nn.Conv2d(1, c, 3, padding=1)
        self.norm = nn.LayerNorm(c)
        self.pw = nn.Linear(c, c)
        self.head = nn.Conv2d(c, 1, 5, padding=2)

    def forward(self, x):
        y = self.pw(self.norm(self.conv(x).permute(0, 2, 3, 1)))
        return self.head(y.permute(0, 3, 1, 2))


def test_channels_last_linear_is_pointwise():
    rf = fields_of(ChannelsLast(), (1, 20, 24))
    assert rf.by_name("pw").status == "spatial" and not rf.by_name("pw").global_context
    assert rf.by_name("head").receptive_field == (3 + 4, 3 + 4)
    assert rf.final.name == "head"


def test_pooling_one_axis_is_partial():
    class Strip(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 2, 3, padding=1)
            self.head = nn.Conv2d(2, 1, (3, 1), padding=(1, 0))

        def forward(self, x):
            return self.head(self.conv(x).mean(dim=3, keepdim=True))  # strip pooling over W

    rf = fields_of(Strip(), (1, 16, 16))
    head = rf.by_name("head")
    assert head.status == "partial"
    assert head.receptive_field == (5, None)  # H: 3 + 2; W: every column


# ---------------------------------------------------------------------- recorded dims


class SwapAxes(nn.Module):
    """A 3-tall kernel, then H and W swapped, then a 5-tall kernel: on the input's axes
    the field is 3 along H and 5 along W. The map is square, so the sizes alone cannot
    tell where H went: the tracer's recorded permutation must."""

    def __init__(self, how: str):
        super().__init__()
        self.how = how
        self.a = nn.Conv2d(1, 1, (3, 1), padding=(1, 0))
        self.b = nn.Conv2d(1, 1, (5, 1), padding=(2, 0))

    def forward(self, x):
        x = self.a(x)
        x = x.transpose(2, 3) if self.how == "transpose" else x.permute(0, 1, 3, 2)
        return self.b(x)


@pytest.mark.parametrize("how", ["transpose", "permute"])
def test_recorded_permutation_is_followed_on_a_square_map(how):
    model = positive(SwapAxes(how))
    rf = fields_of(model, (1, 12, 12))
    b = rf.by_name("b")
    assert b.receptive_field == (3, 5) and not b.warnings
    # Gradients agree: the output's H axis is the input's W axis, so unit u of the output
    # along H (axis 0) reads input columns u-2..u+2 along W.
    x = torch.ones((1, 1, 12, 12), dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(model(x)[0, 0, 6, 6], x)
    rows, cols = torch.nonzero(g[0, 0]).T
    assert (int(rows.min()), int(rows.max())) == (5, 7)  # 3 along H
    assert (int(cols.min()), int(cols.max())) == (4, 8)  # 5 along W


class SoftmaxOver(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.sm = nn.Softmax(dim=dim)

    def forward(self, x):
        return self.sm(self.conv(x))


def test_softmax_dim_is_recorded_channels_pointwise_spatial_global():
    over_channels = fields_of(SoftmaxOver(1), (1, 8, 8)).by_name("sm")
    assert over_channels.receptive_field == (3, 3)
    assert not over_channels.global_context and not over_channels.warnings
    over_width = fields_of(SoftmaxOver(3), (1, 8, 8)).by_name("sm")
    assert over_width.global_context and not over_width.warnings  # a whole row normalises it


def test_reflection_pad_amounts_are_recorded():
    # ReflectionPad2d((left 2, right 0, top 0, bottom 3)), then a 3x3 valid conv: the
    # field's padding is 0 on H and 2 on W (the recurrence's P). Lopsided on purpose: a
    # guess from the sizes alone (half of the growth before) would say 1 and 1.
    model = nn.Sequential(nn.ReflectionPad2d((2, 0, 0, 3)), nn.Conv2d(1, 1, 3))
    rf = fields_of(model, (1, 10, 10))
    assert [a.padding for a in rf.by_name("1").axes] == [0, 2]
    assert not rf.by_name("0").warnings
