"""The sweep over real-world models: every torchvision classification, segmentation, video
and optical-flow builder, and 52 timm models (slow; skipped without torchvision/timm).

References, none of them cnnscope's own output:

- torchvision: each weights entry's published ``meta["num_params"]`` and ``meta["_ops"]``
  (GFLOPS in torchvision's multiply-add convention, 3 decimals), the model built with the
  settings those weights use, at the weights' crop size (segmentation: the resize size;
  video: 16 frames, as the script that computed ``_ops`` used).
- timm: the parameter count of the model built on the CPU (``sum(p.numel())``) and
  ``torch.utils.flop_counter.FlopCounterMode`` on real CPU tensors, halved (it counts a
  multiply-add as 2 FLOPs), with attention forced onto the math path (it has no formula
  for the CPU flash kernel); and cnnscope's own meta and CPU traces must agree.

This machine's default environment cannot import torchvision (the CPU-only torch wheel
cannot load its compiled ops). Create the environment these tests need with
``../shared/tools/ext-env.sh .venv-ext`` (docs/real-world.md, "What was checked"), then run
``.venv-ext/bin/python -m pytest tests/test_real_models.py -m slow``.
"""

from __future__ import annotations

import pytest

from tests.optional import optional_import

pytestmark = pytest.mark.slow


tv = optional_import("torchvision")
timm = optional_import("timm") if tv is not None else None


# ---------------------------------------------------------------------- torchvision

def _torchvision_cases():
    if tv is None:
        return []
    import torchvision.models as tvm

    cases = []
    for kind, module in (("classification", tv.models), ("segmentation", tv.models.segmentation),
                         ("video", tv.models.video), ("optical_flow", tv.models.optical_flow)):
        for name in tvm.list_models(module=module):
            for weights in tvm.get_model_weights(name):
                cases.append(pytest.param(kind, name, weights, id=f"{name}-{weights.name}"))
    return cases


def _settings(kind, name, weights):
    """The builder arguments and input the weights use."""
    meta = weights.meta
    t = weights.transforms()
    side = getattr(t, "crop_size", None) or getattr(t, "resize_size", None)
    kwargs = {}
    if meta.get("categories") is not None:
        kwargs["num_classes"] = len(meta["categories"])
    if name == "googlenet":
        kwargs["aux_logits"] = False  # torchvision's weights drop GoogLeNet's aux heads
    if name.startswith("vit_"):
        kwargs["image_size"] = side[0]  # the SWAG weights are for 384 and 518
    if kind == "segmentation" and not name.startswith("lraspp"):
        kwargs["aux_loss"] = True  # the published FCN/DeepLabV3 weights keep the aux head
    if kind == "video":
        size = (3, 16, side[0], side[-1])
    elif kind == "optical_flow":
        size = [(3, 520, 960), (3, 520, 960)]  # two frames; Sintel's size, padded to /8
    else:
        size = (3, side[0], side[-1])
    return kwargs, size


@pytest.mark.skipif(tv is None, reason="torchvision is not installed or does not load")
@pytest.mark.parametrize("kind, name, weights", _torchvision_cases())
def test_torchvision_params_and_macs_equal_the_published_figures(kind, name, weights):
    import cnnscope

    kwargs, size = _settings(kind, name, weights)
    report = cnnscope.analyze(f"torchvision:{name}", size, **kwargs)
    assert report.unsupported == ()
    assert report.totals.params == weights.meta["num_params"]
    if kind == "optical_flow":
        # torchvision's _ops for RAFT (211.007 / 47.655) was measured at an input size
        # its metadata does not record; the MACs are checked against FlopCounterMode below.
        return
    assert round(report.totals.macs / 1e9, 3) == weights.meta["_ops"]


@pytest.mark.skipif(tv is None, reason="torchvision is not installed or does not load")
@pytest.mark.parametrize("name", ["raft_small"])
def test_optical_flow_macs_equal_flop_counter(name):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    import cnnscope

    size = (3, 128, 128)
    report = cnnscope.analyze(f"torchvision:{name}", [size, size])
    torch.manual_seed(0)
    model = tv.models.get_model(name, weights=None).eval()
    x = torch.randn(1, *size)
    with FlopCounterMode(display=False) as counter:
        model(x, x)
    assert report.totals.macs == counter.get_total_flops() // 2


@pytest.mark.skipif(tv is None, reason="torchvision is not installed or does not load")
def test_regnets_build_through_the_cpu_fallback():
    import cnnscope

    report = cnnscope.analyze("torchvision:regnet_y_400mf")
    assert report.build_path == "cpu-skip-init" and report.device == "meta"
    w = tv.models.RegNet_Y_400MF_Weights.IMAGENET1K_V1
    assert report.totals.params == w.meta["num_params"]


@pytest.mark.skipif(tv is None, reason="torchvision is not installed or does not load")
def test_detection_falls_back_to_cpu_and_downloads_nothing():
    import cnnscope

    report = cnnscope.analyze("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", (3, 320, 320))
    assert report.device == "cpu" and report.build_path == "cpu-random-init"
    assert report.data_dependent  # nonzero, in the RPN
    assert any("counted at its caps" in n for n in report.notes)
    assert report.unsupported == ()
    data = cnnscope.analyze("torchvision:fasterrcnn_mobilenet_v3_large_320_fpn", (3, 320, 320),
                            detections="data")
    assert any("counts depend on the input and the weights" in n for n in data.notes)


@pytest.mark.skipif(tv is None, reason="torchvision is not installed or does not load")
@pytest.mark.parametrize("name", ["vit_b_16", "swin_t", "maxvit_t"])
def test_torchvision_attention_models_count_the_same_on_meta_and_cpu(name):
    import cnnscope

    meta = cnnscope.analyze(f"torchvision:{name}")
    cpu = cnnscope.analyze(f"torchvision:{name}", device="cpu")
    assert cpu.unsupported == () and meta.unsupported == ()
    assert cpu.totals.macs == meta.totals.macs
    assert _rows(cpu) == _rows(meta)


def _rows(report):
    """What a table or a lock shows of each row: the same on every device."""
    return [(r.name, r.type, r.kind, r.inputs, r.output_shape, r.params, r.macs, r.flops,
             r.activations) for r in report.layers]


# ---------------------------------------------------------------------- timm

TIMM_MODELS = [
    # transformers and hybrids (attention through F.scaled_dot_product_attention)
    "vit_tiny_patch16_224", "deit_tiny_patch16_224", "deit3_small_patch16_224",
    "beit_base_patch16_224", "eva02_tiny_patch14_224", "cait_xxs24_224", "xcit_tiny_12_p16_224",
    "swin_tiny_patch4_window7_224", "swinv2_cr_tiny_ns_224", "twins_svt_small",
    "pit_ti_224", "crossvit_tiny_240", "coat_tiny", "convit_tiny", "tnt_s_patch16_224",
    "volo_d1_224", "nest_tiny", "gcvit_xxtiny", "mvitv2_tiny", "hiera_tiny_224",
    "maxvit_tiny_tf_224", "coatnet_0_rw_224", "efficientformer_l1", "efficientformerv2_s0",
    "levit_128", "mobilevit_xs", "mobilevitv2_050", "fastvit_t8", "efficientvit_b0",
    "edgenext_xx_small", "visformer_tiny", "halonet26t", "botnet26t_256", "lambda_resnet26t",
    # MLPs and recurrent mixing
    "mixer_s16_224", "resmlp_12_224", "gmlp_ti16_224", "sequencer2d_s", "poolformer_s12",
    # convolutional networks
    "convnext_tiny", "convnextv2_atto", "resnet18", "efficientnet_b0",
    "mobilenetv3_small_100", "regnety_002", "repvgg_a0", "rexnet_100", "ghostnet_100",
    "cspresnet50", "dla34", "nfnet_l0", "hrnet_w18_small",
]


@pytest.mark.skipif(timm is None, reason="timm is not installed or does not load")
@pytest.mark.parametrize("name", TIMM_MODELS)
def test_timm_params_exact_macs_equal_flop_counter_and_devices_agree(name):
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    import cnnscope

    meta = cnnscope.analyze(f"timm:{name}")
    size = meta.input_size
    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).eval()
    x = torch.randn(1, *size)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x)
    assert meta.totals.params == sum(p.numel() for p in model.parameters())
    assert meta.unsupported == ()
    assert meta.totals.macs == counter.get_total_flops() // 2 + _lstm_macs(model, meta)
    # A fresh model: some cache tensors on their first call (ConViT's rel_indices, LeViT's
    # attention-bias cache), which the FlopCounterMode run above has made.
    fresh = timm.create_model(name, pretrained=False).eval()
    cpu = cnnscope.analyze(fresh, size, device="cpu")  # the default kernels: flash on CPU
    assert cpu.unsupported == ()
    assert cpu.totals.macs == meta.totals.macs
    # same rows, names and counts on every device (issue 22 item 3: mobilevit_xs had 9
    # rows more on meta; eva02 named its attention rows after the CPU flash kernel)
    assert _rows(cpu) == _rows(meta)
    # the layer and block memo replays exactly what running every layer records (two
    # fresh models: some cache tensors in eval mode, e.g. LeViT's attention biases)
    from cnnscope.trace.tracer import trace_module

    source = cnnscope.resolve(f"timm:{name}")
    fast = trace_module(source.build("meta"), size, 2)
    slow = trace_module(source.build("meta"), size, 2, memoize=False)
    assert fast.layers == slow.layers and fast.totals == slow.totals


def _lstm_macs(model, report):
    """MACs of the model's LSTMs, written out: FlopCounterMode has no LSTM formula.

    Per LSTM call: every (batch x step) position runs 4 gates of H units over the input
    (I) and the hidden state (H), in each direction: B*T * dirs * 4H * (I + H).
    """
    from math import prod

    from torch import nn

    modules = dict(model.named_modules())
    total = 0
    for row in report.layers:
        m = modules.get(row.name.split("#")[0])
        if isinstance(m, nn.LSTM):
            assert m.num_layers == 1 and m.proj_size == 0
            x = row.input_shapes[0]
            dirs = 2 if m.bidirectional else 1
            total += prod(x[:-1]) * dirs * 4 * m.hidden_size * (m.input_size + m.hidden_size)
    return total


@pytest.mark.skipif(tv is None, reason="torchvision is not installed or does not load")
@pytest.mark.parametrize("name", ["fasterrcnn_mobilenet_v3_large_320_fpn", "retinanet_resnet50_fpn",
                                  "ssdlite320_mobilenet_v3_large"])
def test_detection_counts_at_the_caps_do_not_depend_on_the_weights(name):
    # Issue 22 item 6: how many boxes survive NMS depended on the random weights drawn.
    import torch

    import cnnscope

    def fresh(seed, thresh=None):
        # One trace per model: MultiScaleRoIAlign caches its scales at its first call.
        torch.manual_seed(seed)
        model = tv.models.get_model(name, weights=None, weights_backbone=None).eval()
        if thresh is not None:  # what fewer surviving boxes (sharper scores) would do
            for m in model.modules():
                if isinstance(m.__dict__.get("score_thresh"), float):
                    m.score_thresh = thresh
        return model

    size = (3, 320, 320)
    caps = [cnnscope.analyze(fresh(seed, thresh), size, device="cpu")
            for seed in (1, 2) for thresh in (None, 0.9)]
    data = [cnnscope.analyze(fresh(seed, 0.9), size, device="cpu", detections="data")
            for seed in (1, 2)]
    assert len({(r.totals.macs, r.totals.flops) for r in caps}) == 1
    assert all(any("counted at its caps" in n for n in r.notes) for r in caps)
    # the data-dependent count does move (so this test can fail): fewer boxes decoded
    assert all(d.totals.flops < caps[0].totals.flops for d in data)


def _all_torchvision_builders():
    if tv is None:
        return []
    return tv.models.list_models()  # every module: classification to quantized


@pytest.mark.skipif(tv is None, reason="torchvision is not installed or does not load")
@pytest.mark.parametrize("name", _all_torchvision_builders())
def test_every_torchvision_builder_runs_with_no_input(name):
    # Issue 22 item 5: raft_small failed (forward() missing 'image2'). Measured with
    # torchvision 0.28: 121 of 121 builders run.
    import cnnscope

    report = cnnscope.analyze(f"torchvision:{name}")
    assert report.totals.params > 0 and report.totals.macs > 0


@pytest.mark.skipif(tv is None, reason="torchvision is not installed or does not load")
def test_a_built_torchvision_module_gets_the_input_of_its_builder():
    # Issue 22 item 4: a built module is traced at the input its weights' metadata gives
    # (torchvision:NAME's input), not at 3x224x224.
    from cnnscope.models import module_input_size, resolve
    from cnnscope.trace.sizes import DEFAULT_INPUT

    wrong = []
    for name in tv.models.list_models():
        if "quantized" in name or any(k in name for k in ("rcnn", "retinanet", "fcos", "ssd")):
            continue  # quantized: as their float models; detection: any size
        source = resolve(f"torchvision:{name}")
        got = module_input_size(source.build("meta")) or DEFAULT_INPUT
        if tuple(got) != tuple(source.input_size):
            wrong.append((name, got, source.input_size))
    assert wrong == []
