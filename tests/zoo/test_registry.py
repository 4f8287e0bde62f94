"""The registry: one way in, clear failures."""

import pytest
from torch import nn

from cnnscope.errors import RegistryError, UnknownModelError
from cnnscope.zoo import _registry, get_model, list_models, model_info, register_model


def test_unknown_name_suggests_close_names():
    with pytest.raises(UnknownModelError) as exc:
        model_info("resnet5")
    assert "did you mean" in str(exc.value) and "resnet50" in str(exc.value)


def test_unknown_name_without_close_match_points_to_the_zoo():
    with pytest.raises(UnknownModelError, match="cnnscope zoo"):
        get_model("qqqqqqqq")


def test_pattern_and_family_filters():
    names = list_models("resnet*")
    assert {"resnet18", "resnet50", "resnet152"} <= set(names)
    assert all(n.startswith("resnet") for n in names)
    assert names.index("resnet18") < names.index("resnet101")  # natural order
    assert set(list_models(family="VGG")) >= {"vgg16", "vgg19_bn"}


def test_registering_a_name_twice_is_an_error():
    with pytest.raises(RegistryError, match="twice"):
        register_model("vgg16", family="VGG", paper="x", year=2014)(lambda: nn.Identity())


def test_reference_params_need_a_source():
    with pytest.raises(RegistryError, match="reference_source"):
        register_model("tmp_model_without_source", family="X", paper="x", year=2000,
                       reference_params=1)(lambda: nn.Identity())
    assert "tmp_model_without_source" not in _registry._REGISTRY


def test_every_model_has_metadata():
    for name in list_models():
        info = model_info(name)
        assert info.paper and info.family and 1989 <= info.year <= 2026, name
        assert len(info.input_size) == 3 and info.num_classes >= 1, name
        assert info.summary, f"{name} has no docstring"
