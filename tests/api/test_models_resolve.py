"""Model specs: zoo names, file.py:factory, package.module:factory, torchvision:/timm:."""

import sys
import types

import pytest
import torch
from torch import nn

import cnnscope
from cnnscope.errors import ModelLoadError, UnknownModelError
from cnnscope.models import resolve


def tiny_params(width, num_classes=10, in_channels=3):
    # examples/custom_model.py TinyNet: conv3x3 (no bias) + BN, conv3x3 (no bias) + BN, fc.
    return (in_channels * width * 3 * 3 + 2 * width
            + width * 2 * width * 3 * 3 + 2 * 2 * width
            + 2 * width * num_classes + num_classes)


NET = """
    from torch import nn

    class Net(nn.Module):
        def __init__(self, width=4):
            super().__init__()
            self.conv = nn.Conv2d(3, width, 3)
            self.fc = nn.Linear(width, 2)

        def forward(self, x):
            return self.fc(self.conv(x).mean((2, 3)))

    def build(width=4):
        return Net(width)

    build.input_size = (3, 16, 16)
    NUMBER = 3
    def not_a_model():
        return 42
    def boom(**kw):
        raise ValueError("bad width")
    class Plain:
        pass
    instance = Net(2)
"""


def net_params(width):
    return 3 * width * 3 * 3 + width + width * 2 + 2


def test_zoo_name_resolves_with_its_metadata():
    src = resolve("resnet18")
    assert (src.name, src.origin, src.input_size) == ("resnet18", "zoo", (3, 224, 224))


def test_unknown_zoo_name_suggests():
    with pytest.raises(UnknownModelError, match="did you mean"):
        resolve("resnet5O")


def test_file_factory_with_args_and_input_size_attribute(write_file, tmp_path):
    path = write_file("net.py", NET)
    src = resolve(f"{path}:build", width=8)
    assert src.origin == "file" and src.name == "net:build" and src.spec == f"{path}:build"
    assert src.input_size == (3, 16, 16)
    model = src.build("meta")
    assert next(model.parameters()).device.type == "meta"
    report = cnnscope.analyze(src)
    assert report.input_size == (3, 16, 16)
    assert report.totals.params == net_params(8)


def test_file_class_is_a_factory_and_default_input_is_224(write_file, tmp_path):
    path = write_file("net.py", NET)
    src = resolve(f"{path}:Net", width=5)
    assert src.input_size is None
    report = cnnscope.analyze(src)
    assert report.input_size == (3, 224, 224)
    assert report.totals.params == net_params(5)


def test_module_instance_in_a_file(write_file, tmp_path):
    path = write_file("net.py", NET)
    report = cnnscope.analyze(f"{path}:instance")
    assert report.totals.params == net_params(2)
    with pytest.raises(ModelLoadError, match="instance"):
        resolve(f"{path}:instance", width=3).build()


def test_package_module_factory(write_file, tmp_path, monkeypatch):
    pkg = tmp_path / "userpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    write_file("userpkg/models.py", NET)
    monkeypatch.syspath_prepend(str(tmp_path))
    src = resolve("userpkg.models:build", width=3)
    assert src.origin == "module" and src.name == "userpkg.models:build"
    assert cnnscope.analyze(src).totals.params == net_params(3)
    sys.modules.pop("userpkg.models", None)
    sys.modules.pop("userpkg", None)


@pytest.mark.parametrize("attr, message", [
    ("NUMBER", "is a value of type int, not a model factory"),
    ("Plain", "not an nn.Module subclass"),
    ("nothing", "has no attribute 'nothing'"),
])
def test_attributes_that_are_not_factories_are_refused(write_file, tmp_path, attr, message):
    path = write_file("net.py", NET)
    with pytest.raises(ModelLoadError, match=message):
        resolve(f"{path}:{attr}")


def test_missing_attribute_lists_the_factories(write_file, tmp_path):
    path = write_file("net.py", NET)
    with pytest.raises(ModelLoadError) as err:
        resolve(f"{path}:nothing")
    assert "build" in str(err.value) and "Net" in str(err.value)


def test_factory_returning_something_else_names_the_file(write_file, tmp_path):
    path = write_file("net.py", NET)
    with pytest.raises(ModelLoadError, match=r"net\.py:not_a_model returned int, not an nn.Module"):
        resolve(f"{path}:not_a_model").build()


def test_factory_that_raises_names_the_file_and_error(write_file, tmp_path):
    path = write_file("net.py", NET)
    with pytest.raises(ModelLoadError, match=r"net\.py:boom raised ValueError: bad width"):
        cnnscope.analyze(f"{path}:boom")


def test_wrong_args_for_a_factory_are_a_user_error(write_file, tmp_path):
    path = write_file("net.py", NET)
    with pytest.raises(ModelLoadError, match="with depth=3 raised TypeError"):
        cnnscope.analyze(f"{path}:build", depth=3)


def test_wrong_args_for_a_zoo_model_are_a_user_error():
    with pytest.raises(ModelLoadError, match="lenet5 with width=3 raised TypeError"):
        cnnscope.analyze("lenet5", width=3)


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError, match="nope.py' does not exist"):
        resolve(f"{tmp_path}/nope.py:build")


def test_file_that_fails_to_import_names_the_file(write_file, tmp_path):
    path = write_file("broken.py", "import torch\nraise RuntimeError('no GPU here')\n")
    with pytest.raises(ModelLoadError, match=r"broken\.py' raised RuntimeError: no GPU here"):
        resolve(f"{path}:build")


def test_syntax_error_names_the_line(write_file, tmp_path):
    path = write_file("syntax.py", "x = 1\ndef build(:\n")
    with pytest.raises(ModelLoadError, match=r"SyntaxError \(line 2\)"):
        resolve(f"{path}:build")


def test_file_without_factory_gets_a_hint():
    with pytest.raises(ModelLoadError, match="names a file but no factory"):
        resolve("examples/custom_model.py")


def test_missing_module():
    with pytest.raises(ModelLoadError, match="no module named 'no_such_pkg_xyz'"):
        resolve("no_such_pkg_xyz.models:build")


def test_user_code_runs_only_when_named(write_file, tmp_path):
    marker = tmp_path / "ran"
    path = write_file("side.py", f"""
        open({str(marker)!r}, "w").close()
        from torch import nn
        def build():
            return nn.Linear(2, 2)
    """)
    resolve("lenet5")
    assert not marker.exists()
    resolve(f"{path}:build")
    assert marker.exists()


def test_sibling_imports_work_in_a_user_file(write_file, tmp_path):
    write_file("blocks.py", "from torch import nn\nWIDTH = 6\n")
    path = write_file("main_net.py", """
        from blocks import WIDTH
        from torch import nn
        def build():
            return nn.Linear(WIDTH, 2)
    """)
    assert cnnscope.analyze(f"{path}:build", (6,)).totals.params == 6 * 2 + 2


def _has(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


@pytest.mark.skipif(_has("torchvision"), reason="torchvision is installed")
def test_torchvision_missing_is_a_clear_message():
    with pytest.raises(ModelLoadError, match="needs torchvision, which is not installed"):
        resolve("torchvision:resnet50")


@pytest.mark.skipif(_has("timm"), reason="timm is installed")
def test_timm_missing_is_a_clear_message():
    with pytest.raises(ModelLoadError, match="needs timm, which is not installed"):
        resolve("timm:xception41")


def test_torchvision_spec_builds_without_weights(monkeypatch):
    # A stand-in torchvision: checks the wiring (builder lookup, weights=None, input size)
    # without the package.
    calls = {}

    def resnet_like(weights=None, num_classes=1000):
        calls["weights"] = weights
        return nn.Linear(8, num_classes)

    def get_model_builder(name):
        if name != "resnet_like":
            raise ValueError(name)
        return resnet_like

    tv = types.ModuleType("torchvision")
    tvm = types.ModuleType("torchvision.models")
    tvm.get_model_builder = get_model_builder
    tv.models = tvm
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.models", tvm)
    src = resolve("torchvision:resnet_like", num_classes=10)
    assert src.input_size == (3, 224, 224)
    model = src.build("meta")
    assert calls["weights"] is None and model.out_features == 10
    with pytest.raises(ModelLoadError, match="torchvision has no model 'nosuch'"):
        resolve("torchvision:nosuch")
    with pytest.raises(ModelLoadError, match="never loads weights"):
        resolve("torchvision:resnet_like", weights="DEFAULT")


def test_timm_spec_builds_unpretrained(monkeypatch):
    calls = {}

    def create_model(name, pretrained=False, **kwargs):
        calls["pretrained"] = pretrained
        return nn.Linear(4, 3)

    timm = types.ModuleType("timm")
    timm.is_model = lambda name: name == "xception41"
    timm.create_model = create_model
    timm.models = types.SimpleNamespace(
        get_pretrained_cfg=lambda name: types.SimpleNamespace(input_size=(3, 299, 299)))
    monkeypatch.setitem(sys.modules, "timm", timm)
    src = resolve("timm:xception41")
    assert src.input_size == (3, 299, 299)
    src.build("meta")
    assert calls["pretrained"] is False
    with pytest.raises(ModelLoadError, match="timm has no model"):
        resolve("timm:nosuch")


def test_input_size_attribute_must_be_a_shape_of_rank_1_to_4(write_file, tmp_path):
    # (224, 224) is a valid CxL input since inputs of any rank are accepted
    path = write_file("net.py", """
        from torch import nn
        def build():
            return nn.Linear(2, 2)
        build.input_size = (3, 224, 224, 2, 2)
    """)
    with pytest.raises(ModelLoadError, match="is not \\(C, H, W\\)"):
        resolve(f"{path}:build")


def test_factory_runs_on_the_meta_device(write_file, tmp_path):
    path = write_file("net.py", """
        import torch
        from torch import nn
        SEEN = []
        def build():
            SEEN.append(torch.empty(1).device.type)
            return nn.Linear(2, 2)
    """)
    src = resolve(f"{path}:build")
    src.build("meta")
    assert src.builder.__globals__["SEEN"] == ["meta"]
    assert torch.empty(1).device.type == "cpu"
