"""The pictures: valid PNG/SVG files of sensible size whose plotted values are the records'.

Each figure function returns the matplotlib Figure; the tests read the bars, lines and
points back from it and compare them with the records (and, for the receptive field,
with values from the paper's layer table), not with a screenshot.
"""

import json
import struct
import sys
import xml.etree.ElementTree as ET

import pytest

from cnnscope.analysis.aggregate import group_by_depth
from cnnscope.analysis.receptive_field import receptive_fields
from cnnscope.benchmark.records import BenchRow, LayerTiming, PerLayer
from cnnscope.benchmark.roofline import apply_roofline

pytest.importorskip("matplotlib")

from cnnscope.report import plot  # noqa: E402  (after the matplotlib check)

FAST = ["--device", "cpu", "--iters", "2", "--warmup", "1", "--max-warmup", "1", "--no-progress"]


def png_size(path):
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def assert_image(path, min_px=400):
    assert path.exists() and path.stat().st_size > 5_000
    if path.suffix == ".png":
        w, h = png_size(path)
        assert min_px <= w <= 4000 and min_px <= h <= 8000, (w, h)
    else:
        root = ET.parse(path).getroot()
        assert root.tag.endswith("svg")


def bar_heights(ax):
    return [patch.get_height() for patch in ax.containers[0]]


# ---------------------------------------------------------------------- params | flops


def test_layer_bars_are_the_records_params_and_macs(zoo_report):
    report = zoo_report("resnet18")
    rows = report.visible_layers()
    fig = plot.layers_figure(report, rows)
    ax_p, ax_m = fig.axes
    assert bar_heights(ax_p) == [r.params for r in rows]
    assert bar_heights(ax_m) == [r.macs for r in rows]
    assert bar_heights(ax_m)[0] == 112 * 112 * 64 * 3 * 7 * 7  # conv1
    assert sum(bar_heights(ax_p)) == 11_689_512  # torchvision's resnet18 num_params


def test_stage_bars_with_depth_add_up_to_the_totals(zoo_report):
    report = zoo_report("resnet50")
    rows = group_by_depth(report, 1)
    fig = plot.layers_figure(report, rows)
    ax_p, ax_m = fig.axes
    names = [t.get_text() for t in ax_m.get_xticklabels()]
    assert names == [r.name for r in rows]
    assert sum(bar_heights(ax_p)) == 25_557_032  # torchvision's resnet50 num_params
    assert sum(bar_heights(ax_m)) == 4_089_184_256  # torchvision's 4.09 GFLOPS (MACs)


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_params_plot_file(run, tmp_path, suffix):
    path = tmp_path / f"layers{suffix}"
    res = run("params", "lenet5", "--plot", str(path))
    assert res.exit_code == 0, res.output
    assert f"wrote {path}" in res.stderr
    assert "(--explain: in full)" in res.stdout  # the table is still printed
    assert_image(path)


# ---------------------------------------------------------------------- rf


def test_rf_lines_are_the_fields_vgg16_paper_values(zoo_report):
    result = receptive_fields(zoo_report("vgg16"))
    fig = plot.rf_figure(result)
    ax_r, ax_s = fig.axes
    names, fields, strides = plot.rf_points(result)
    assert list(ax_r.lines[0].get_ydata()) == fields
    assert list(ax_s.lines[0].get_ydata()) == strides
    # VGG-16 by hand: 13 3x3 convs and 5 2x2/2 pools; conv5_3 (features.28) sees
    # 1 + 2*(2*1 + 2*2 + 3*4 + 3*8 + 3*16) + (1*1 + 1*2 + 1*4 + 1*8) = 196 at stride 16,
    # pool5 (features.30) 196 + 1*16 = 212 at stride 32.
    at = dict(zip(names, zip(fields, strides)))
    assert at["features.28"] == (196, 16.0)
    assert at["features.30"] == (212, 32.0)
    assert "classifier.0" not in at  # fully connected: global, not plotted


def test_rf_plot_file(run, tmp_path):
    path = tmp_path / "rf.png"
    res = run("rf", "alexnet", "--plot", str(path))
    assert res.exit_code == 0, res.output
    assert_image(path)


# ---------------------------------------------------------------------- roofline


def synthetic_row():
    layers = (
        LayerTiming(name="conv", type="Conv2d", macs=300, fwd_ms=1.0, flops=600, bytes_moved=100),
        LayerTiming(name="relu", type="ReLU", macs=0, fwd_ms=0.5, flops=10, bytes_moved=80),
        LayerTiming(name="view", type="Flatten", macs=0, fwd_ms=0.1, flops=0, bytes_moved=0),
    )
    p = apply_roofline(PerLayer(layers=layers, samples=1, sum_fwd_ms=1.6, hooked_fwd_ms=1.6,
                                clean_fwd_ms=1.5), 1e6, 1e5)  # ridge: 10 FLOP/byte
    return BenchRow(model="m", device="cpu", device_name="cpu", batch=1, dtype="fp32",
                    mode="infer", input_size=(3, 8, 8), median_ms=1.5, per_layer=p)


def test_roofline_points_and_roofs_are_the_records():
    row = synthetic_row()
    fig = plot.roofline_figure([row])
    (ax,) = fig.axes
    points = sorted(tuple(map(float, xy)) for c in ax.collections for xy in c.get_offsets())
    # relu: 10 / 80 = 0.125 FLOP/byte at 10 FLOPs / 0.5 ms = 2e4 FLOP/s; conv: 600 / 100 =
    # 6 at 600 FLOPs / 1 ms = 6e5 FLOP/s; the view moves nothing: no point.
    assert points == [(0.125, pytest.approx(2e4)), (6.0, pytest.approx(6e5))]
    memory_roof, compute_roof = ax.lines
    ridge = 1e6 / 1e5
    assert memory_roof.get_xdata()[-1] == ridge and memory_roof.get_ydata()[-1] == 1e6
    x0 = memory_roof.get_xdata()[0]
    assert memory_roof.get_ydata()[0] == pytest.approx(x0 * 1e5)  # intensity x bandwidth
    assert list(compute_roof.get_ydata()) == [1e6, 1e6]


def test_bench_roofline_plot_file(run, tmp_path, monkeypatch):
    monkeypatch.setenv("CNNSCOPE_CACHE_DIR", str(tmp_path / "cache"))
    from cnnscope.benchmark import bandwidth, ceiling

    ceiling.clear_run_cache()
    bandwidth.clear_run_cache()
    import torch

    from cnnscope.benchmark.env import device_name
    from cnnscope.benchmark.runner import torch_threads
    from cnnscope.benchmark.stability import default_threads

    with torch_threads(default_threads()):  # the CLI's threads: part of the key
        key = ceiling.device_key(torch.device("cpu"))
    (tmp_path / "cache").mkdir()
    # entries as a stable measurement on this machine writes them
    common = dict(device_name=device_name(torch.device("cpu")), measured_at="2026-12-01T00:00:00",
                  torch_version=torch.__version__, stable=True, spread=0.01)
    (tmp_path / "cache" / "matmul_ceiling.json").write_text(json.dumps(
        {key: {"fp32": dict(common, dtype="fp32", tflops=0.1, n=512)}}))
    (tmp_path / "cache" / "copy_bandwidth.json").write_text(json.dumps(
        {key: dict(common, bytes_per_s=1e10, nbytes=1)}))
    path = tmp_path / "roof.svg"
    res = run("bench", "lenet5", "--per-layer", "--plot", str(path), *FAST)
    ceiling.clear_run_cache()
    bandwidth.clear_run_cache()
    assert res.exit_code == 0, res.output
    assert_image(path)
    assert "ridge point 10 FLOP/byte" in res.stdout  # 1e11 FLOP/s / 1e10 B/s


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize("args", [
    ["params", "lenet5"], ["flops", "lenet5", "--depth", "1"], ["rf", "lenet5"],
    ["bench", "lenet5", "--per-layer", *FAST],
])
def test_without_matplotlib_each_plot_is_a_one_line_error(run, one_line_error, tmp_path, monkeypatch, args):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    path = tmp_path / "x.png"
    line = one_line_error(run(*args, "--plot", str(path)))
    assert "needs matplotlib" in line and "pip install 'cnnscope[plot]'" in line
    assert not path.exists()


@pytest.mark.parametrize("args", [["params", "lenet5"], ["rf", "lenet5"]])
def test_a_name_that_is_not_png_or_svg_fails_before_any_work(run, one_line_error, tmp_path, args):
    line = one_line_error(run(*args, "--plot", str(tmp_path / "x.gif")))
    assert ".png or .svg" in line


def test_bench_plot_needs_per_layer(run, one_line_error, tmp_path):
    line = one_line_error(run("bench", "lenet5", "--plot", str(tmp_path / "x.png"), *FAST))
    assert "--per-layer" in line
