"""The API calls behind rf, shape, report and bench: receptive_fields, output_sizes,
report_folder, bench_sweep. Expected values are the papers' figures or the arithmetic
that gives them."""

from __future__ import annotations

import pytest

import cnnscope
from cnnscope import api
from cnnscope.errors import InputTooSmallError, InvalidOptionError, UnknownModelError


def vgg16_conv5_3_field() -> int:
    # The textbook recurrence r += (k - 1) * j, j *= s over VGG-16 (configuration D):
    # five blocks of 3x3 convolutions (2, 2, 3, 3, 3 of them), a 2x2/2 pool after each
    # block but the last before conv5_3.
    r, j = 1, 1
    for convs, pool in ((2, True), (2, True), (3, True), (3, True), (3, False)):
        r += convs * (3 - 1) * j
        if pool:
            r += (2 - 1) * j
            j *= 2
    return r


def test_receptive_fields_of_vgg16_conv5_3():
    assert vgg16_conv5_3_field() == 196  # the figure usually quoted for conv5_3
    rf = api.receptive_fields("vgg16")
    conv5_3 = rf.by_name("features.28")  # torchvision's index of conv5_3
    assert conv5_3.receptive_field == (196, 196)
    assert conv5_3.effective_stride == (2 ** 4, 2 ** 4)  # four pools before it
    # The summary is the last spatial map, pool5: 196 + (2 - 1) * 16 = 212.
    assert rf.final.receptive_field == (196 + (2 - 1) * 16,) * 2


def test_receptive_fields_pass_builder_arguments_and_the_input():
    # A VGG-16 on a 64x64 input: the field does not depend on the input size; the
    # output of conv5_3 is 64 / 2**4 = 4 units wide.
    rf = cnnscope.receptive_fields("vgg16", (3, 64, 64), num_classes=10)
    assert rf.by_name("features.28").output_shape[-2:] == (64 // 2 ** 4,) * 2
    assert rf.input_size == (3, 64, 64)
    with pytest.raises(UnknownModelError):
        api.receptive_fields("no_such_net")


def test_output_sizes_of_resnet50_end_in_7x7_at_224():
    result = api.output_sizes("resnet50")
    # The last map before global pooling (avgpool's input): overall stride 2**5 = 32.
    pool = next(r for r in result.rows if r.name == "avgpool")
    assert pool.input_shape == (1, 2048, 224 // 2 ** 5, 224 // 2 ** 5)
    assert pool.output_shape == (1, 2048, 1, 1)
    assert result.output_shapes == ((1, 1000),)


def test_output_sizes_of_the_unet_paper():
    # Ronneberger et al. 2015, Fig. 1: a 572x572 tile gives a 388x388 output map, 2 classes.
    result = api.output_sizes("unet", (1, 572, 572))
    assert result.output_shapes == ((1, 2, 388, 388),)
    assert result.min_input is None and result.valid_near is None  # not asked for


def test_output_sizes_min_and_near():
    # VGG-16's five 2x2/2 pools need 2**5 = 32 pixels; at 31 pool5 gets a 1x1 map.
    vgg = api.output_sizes("vgg16", min=True)
    assert vgg.min_input == (3, 2 ** 5, 2 ** 5)
    assert "features.30" in vgg.min_reason
    # U-Net's valid tiles are 16 m + 124 (every pooled map even): 556 and 572 around 570.
    unet = api.output_sizes("unet", (1, 572, 572), near=570)
    assert unet.valid_near == (16 * 27 + 124, 16 * 28 + 124) and unet.near == 570
    with pytest.raises(InvalidOptionError, match="--near 0 is not positive"):
        api.output_sizes("unet", near=0)
    with pytest.raises(InputTooSmallError):
        api.output_sizes("vgg16", (3, 16, 16))


def test_report_folder_traces_and_compares_every_model():
    # AlexNet as in the paper (two GPUs: grouped conv2, conv4, conv5), weights + biases:
    alexnet_params = (96 * 3 * 11 * 11 + 96 + 256 * 48 * 5 * 5 + 256 + 384 * 256 * 3 * 3 + 384
                      + 384 * 192 * 3 * 3 + 384 + 256 * 192 * 3 * 3 + 256
                      + 4096 * 9216 + 4096 + 4096 * 4096 + 4096 + 1000 * 4096 + 1000)
    folder = api.report_folder(["lenet5", "alexnet"], depth=0)
    assert [r.model for r in folder.reports] == ["lenet5", "alexnet"]
    assert folder.reports[1].totals.params == alexnet_params == 60_965_224
    assert [m.model for m in folder.comparison.models] == ["lenet5", "alexnet"]
    assert len(folder.rows) == 2 and folder.depth == 0
    with pytest.raises(InvalidOptionError, match="--depth -1"):
        api.report_folder(["lenet5"], depth=-1)
    with pytest.raises(UnknownModelError):  # every name resolved before any trace
        api.report_folder(["lenet5", "no_such_net"])


def test_bench_sweep_runs_models_x_dtypes_x_modes_x_batches_in_order():
    from cnnscope.benchmark import BenchSettings

    settings = BenchSettings(device="cpu", warmup=0, max_warmup=0, iters=1, ceiling=False)
    planned, started = [], []
    result = api.bench_sweep(["lenet5"], settings=settings, batches=[2, 1],
                             modes=["infer", "train"], on_plan=planned.append,
                             on_start=lambda i, spec: started.append(spec.label))
    # 1 model x 1 dtype x 2 modes x 2 batches, batches ascending within a mode.
    assert planned == [1 * 1 * 2 * 2]
    assert started == ["lenet5 b1 fp32 infer", "lenet5 b2 fp32 infer",
                       "lenet5 b1 fp32 train", "lenet5 b2 fp32 train"]
    assert [(r.batch, r.mode, r.status) for r in result.rows] == [
        (1, "infer", "ok"), (2, "infer", "ok"), (1, "train", "ok"), (2, "train", "ok")]
    assert result.planned == 4


def test_bench_sweep_checks_names_and_inputs_before_timing():
    from cnnscope.benchmark import BenchSettings

    settings = BenchSettings(device="cpu", iters=1, ceiling=False)
    never = dict(on_start=lambda i, spec: pytest.fail("a row ran"))
    with pytest.raises(InvalidOptionError, match="--all with model names"):
        api.bench_sweep(["lenet5"], all_models=True, settings=settings, **never)
    with pytest.raises(UnknownModelError):
        api.bench_sweep(["lenet5", "no_such_net"], settings=settings, **never)
    small = BenchSettings(device="cpu", iters=1, ceiling=False, input_size=(3, 16, 16))
    with pytest.raises(InputTooSmallError):
        api.bench_sweep(["vgg16"], settings=small, **never)


def test_default_models_are_one_per_family():
    from cnnscope.zoo import model_info

    names = api.default_models()
    families = [model_info(n).family for n in names]
    assert len(families) == len(set(families))
    assert {"resnet50", "vgg16", "googlenet"} <= set(names)
