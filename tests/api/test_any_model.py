"""Real-world builders: tensor arithmetic while building, downloads, data-dependent ops,
a torchvision that does not load. None of these need torchvision: stand-ins reproduce
what its builders do."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

import cnnscope
from cnnscope.build import DownloadRefusedError

# Widths computed with tensors and read back with .tolist(), as torchvision's RegNet
# builder does: impossible under the meta device.
TENSOR_WIDTHS = """
    import torch
    from torch import nn

    INIT_CALLS = []

    class Counted(nn.Conv2d):
        def reset_parameters(self):
            INIT_CALLS.append(1)
            super().reset_parameters()

    def build():
        widths = (torch.arange(1, 3) * 8).tolist()  # [8, 16]
        return nn.Sequential(nn.Conv2d(3, widths[0], 3, bias=False),
                             nn.Conv2d(widths[0], widths[1], 3, bias=False))

    build.input_size = (3, 10, 10)
"""


def test_builder_that_computes_with_tensors_builds_on_cpu_then_traces_on_meta(write_file, tmp_path):
    path = write_file("regnet_like.py", TENSOR_WIDTHS)
    report = cnnscope.analyze(f"{path}:build")
    assert report.device == "meta"
    assert report.build_path == "cpu-skip-init"
    assert report.totals.params == 3 * 8 * 3 * 3 + 8 * 16 * 3 * 3
    # 10x10 -> 8x8 -> 6x6
    assert report.totals.macs == 8 * 8 * 8 * (3 * 9) + 6 * 6 * 16 * (8 * 9)


def test_build_path_is_in_json_and_shown_with_verbose(run, write_file, tmp_path):
    path = write_file("regnet_like.py", TENSOR_WIDTHS)
    result = run("params", f"{path}:build", "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["build_path"] == "cpu-skip-init"
    plain = run("params", f"{path}:build")
    assert "cpu-skip-init" not in plain.stdout and "built" not in plain.stdout.lower()
    verbose = run("params", f"{path}:build", "--verbose")
    assert verbose.exit_code == 0, verbose.output
    assert "built on the CPU without initialisation" in verbose.stdout
    zoo = run("params", "resnet18", "-f", "json")
    assert json.loads(zoo.stdout)["build_path"] == "meta"


def test_cpu_fallback_build_skips_initialisation(monkeypatch):
    import torch
    from torch import nn

    from cnnscope.build import build_model

    calls = []
    real = torch.Tensor.uniform_

    def spy(t, *a, **k):  # what nn.Linear's initialisation ends in
        calls.append(t.device.type)
        return real(t, *a, **k)

    monkeypatch.setattr(torch.Tensor, "uniform_", spy)

    def build():
        (torch.arange(2) * 2).tolist()  # fails on meta: the CPU build runs
        return nn.Linear(4, 4)  # reset_parameters calls kaiming_uniform_

    model = build_model(build, {}, "meta", "build")
    assert model.weight.is_meta
    assert calls == []  # no initialisation ran on the CPU
    nn.Linear(4, 4)
    assert calls == ["cpu", "cpu"]  # it works again outside: weight and bias


DOWNLOADS = """
    import socket
    import torch
    from torch import nn

    def hub():
        torch.hub.load_state_dict_from_url("https://download.example/weights.pth")
        return nn.Linear(2, 2)

    def raw():
        socket.create_connection(("hub.example", 443))
        return nn.Linear(2, 2)
"""


@pytest.mark.parametrize("factory, target", [("hub", "https://download.example/weights.pth"),
                                             ("raw", "hub.example:443")])
def test_a_download_while_building_is_a_one_line_error(run, write_file, tmp_path, factory, target):
    path = write_file("dl.py", DOWNLOADS)
    with pytest.raises(DownloadRefusedError, match=f"tried to download {target}"):
        cnnscope.analyze(f"{path}:{factory}")
    result = run("params", f"{path}:{factory}")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cnnscope: error: building")
    assert target in lines[0] and "never downloads" in lines[0]
    import socket

    import torch.hub

    assert socket.getaddrinfo.__name__ == "getaddrinfo"  # restored
    assert torch.hub.download_url_to_file.__name__ == "download_url_to_file"


def test_torchvision_builders_get_weights_backbone_none(monkeypatch):
    import types

    from torch import nn

    from cnnscope.errors import ModelLoadError

    calls = {}

    def detector(*, weights=None, weights_backbone="IMAGENET1K_V1", num_classes=91):
        calls.update(weights=weights, weights_backbone=weights_backbone)
        return nn.Linear(4, num_classes)

    def classifier(*, weights=None):
        calls.update(classifier=weights)
        return nn.Linear(4, 2)

    tvm = types.ModuleType("torchvision.models")
    tvm.get_model_builder = {"detector": detector, "classifier": classifier}.__getitem__
    tv = types.ModuleType("torchvision")
    tv.models = tvm
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.models", tvm)
    cnnscope.resolve("torchvision:detector", num_classes=3).build("meta")
    assert calls == {"weights": None, "weights_backbone": None}
    cnnscope.resolve("torchvision:classifier").build("meta")
    assert calls["classifier"] is None
    with pytest.raises(ModelLoadError, match="never loads weights.*weights_backbone"):
        cnnscope.resolve("torchvision:detector", weights_backbone="IMAGENET1K_V1")
    cnnscope.resolve("torchvision:detector", weights_backbone=None).build("meta")


DATA_DEPENDENT = """
    import torch
    from torch import nn

    class Detector(nn.Module):
        # a conv, then keep the positions whose score is positive (a detection head's
        # data-dependent step), then a linear layer on a fixed-size summary
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1, bias=False)
            self.fc = nn.Linear(4, 2, bias=False)

        def forward(self, x):
            y = self.conv(x)
            keep = torch.nonzero(y.flatten() > 0)
            return self.fc(y.mean((2, 3))), keep

    def build():
        return Detector()

    build.input_size = (3, 8, 8)
"""


def test_data_dependent_op_falls_back_to_cpu_with_random_weights(run, write_file, tmp_path):
    path = write_file("det.py", DATA_DEPENDENT)
    report = cnnscope.analyze(f"{path}:build")
    assert report.device == "cpu"
    assert report.build_path == "cpu-random-init"
    assert report.data_dependent == ("nonzero",)
    assert any("counts depend on the input and the weights" in n for n in report.notes)
    assert report.totals.macs == 8 * 8 * 4 * 3 * 9 + 4 * 2
    assert report.unsupported == ()
    again = cnnscope.analyze(f"{path}:build")  # seeded: the same counts
    assert again.totals == report.totals
    result = run("params", f"{path}:build", "-f", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["data_dependent_ops"] == ["nonzero"] and data["build_path"] == "cpu-random-init"
    table = run("params", f"{path}:build")
    assert "counts depend on the input and the weights" in " ".join(table.stdout.split())


def test_data_dependent_op_on_a_cpu_module_traces_it_where_it_lives(write_file, tmp_path):
    path = write_file("det.py", DATA_DEPENDENT)
    module = cnnscope.resolve(f"{path}:build").build("cpu")
    report = cnnscope.analyze(module, (3, 8, 8))
    assert report.device == "cpu" and report.data_dependent == ("nonzero",)
    assert module.conv.weight.device.type == "cpu"


FAKE_TORCHVISION = """
    raise RuntimeError("operator torchvision::nms does not exist")
"""


def test_torchvision_that_does_not_load_is_one_line_naming_both_versions(tmp_path, warm_python):
    import torch

    from tests.warm import startup_environment

    pkg = tmp_path / "torchvision"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(textwrap.dedent(FAKE_TORCHVISION))
    dist = tmp_path / "torchvision-0.28.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: torchvision\nVersion: 0.28.0\n"
                                   "Requires-Dist: torch (==2.13.0)\n")
    # nothing of this environment but the interpreter's own start-up variables (so that
    # the warm interpreter's fork stands in for a fresh one, tests/warm.py)
    env = {**startup_environment(os.environ), "PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    cli = "import sys; from cnnscope.cli.main import run; sys.argv[0] = 'cnnscope'; run()"
    proc = subprocess.run([warm_python, "-c", cli, "params", "torchvision:resnet50"],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("cnnscope: error: torchvision:resnet50: torchvision does not load")
    assert f"torch {torch.__version__}" in line and "torchvision 0.28.0" in line
    assert "operator torchvision::nms does not exist" in line
    assert "install" in line  # the fix
    if torch.__version__ != "2.13.0":  # this machine: the CPU-only build, 2.13.0+cpu
        assert f"torchvision 0.28.0 was built for torch 2.13.0, not {torch.__version__}" in line


def test_matching_version_rule():
    from cnnscope.thirdparty import expected_torchvision

    assert expected_torchvision("2.13.0+cpu") == "0.28"  # torchvision 0.28 pairs with torch 2.13
    assert expected_torchvision("2.5.1") == "0.20"
