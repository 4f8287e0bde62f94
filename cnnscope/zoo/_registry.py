"""The model registry: one decorator to register, one factory to build.

Each zoo file registers thin public builders::

    @register_model(family="ResNet", paper=PAPER, year=2016, input_size=(3, 224, 224),
                    reference_params=25_557_032,
                    reference_source="torchvision ResNet50_Weights.IMAGENET1K_V1 num_params")
    def resnet50(**kwargs) -> nn.Module:
        '''ResNet-50 ... (docstring: paper, input, departures).'''
        return _resnet(Bottleneck, [3, 4, 6, 3], **kwargs)

``get_model(name, **kwargs)`` is the only way to build one; an unknown name fails
with a did-you-mean list. ``list_models("resnet*")`` filters by glob pattern.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import pkgutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from torch import nn

from cnnscope.errors import RegistryError, UnknownModelError

ModelFactory = Callable[..., nn.Module]


@dataclass(frozen=True)
class ModelInfo:
    """What the zoo knows about a model before building it."""

    name: str  # lower_snake, as the paper names it: "resnet50", "mobilenet_v2"
    family: str  # display name of the family: "ResNet", "DenseNet"
    paper: str  # short citation: "He et al., Deep Residual Learning for Image Recognition, CVPR 2016"
    year: int  # year of the paper
    input_size: tuple[int, int, int]  # default input, C x H x W
    num_classes: int  # classifier outputs at default settings
    dataset: str  # data set the default configuration is for
    factory: ModelFactory = field(repr=False, compare=False)
    # Published parameter count and where it comes from (None when no reference exists).
    reference_params: int | None = None
    reference_source: str | None = None
    summary: str = ""  # first line of the builder's docstring

    def build(self, **kwargs) -> nn.Module:
        """Instantiate the model (on the current default device)."""
        return self.factory(**kwargs)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str | None = None,
    *,
    family: str,
    paper: str,
    year: int,
    input_size: tuple[int, int, int] = (3, 224, 224),
    num_classes: int = 1000,
    dataset: str = "ImageNet",
    reference_params: int | None = None,
    reference_source: str | None = None,
) -> Callable[[ModelFactory], ModelFactory]:
    """Decorator registering a model builder under ``name`` (default: the function's name)."""

    def decorator(fn: ModelFactory) -> ModelFactory:
        model_name = name or fn.__name__
        if model_name in _REGISTRY:
            raise RegistryError(f"model {model_name!r} is registered twice")
        if model_name != model_name.lower() or " " in model_name:
            raise RegistryError(f"model name {model_name!r} must be lower_snake")
        if len(input_size) != 3:
            raise RegistryError(f"{model_name}: input_size must be (C, H, W)")
        if (reference_params is None) != (reference_source is None):
            raise RegistryError(f"{model_name}: reference_params needs a reference_source")
        doc = inspect.getdoc(fn) or ""
        _REGISTRY[model_name] = ModelInfo(
            name=model_name,
            family=family,
            paper=paper,
            year=year,
            input_size=tuple(input_size),
            num_classes=num_classes,
            dataset=dataset,
            factory=fn,
            reference_params=reference_params,
            reference_source=reference_source,
            summary=doc.splitlines()[0] if doc else "",
        )
        return fn

    return decorator


_ALL_LOADED = False


def _ensure_loaded(name: str | None = None) -> None:
    """Import the family file that registers ``name`` (found in the index), or all of them.

    One file for one model keeps ``cnnscope params resnet50`` from importing twenty.
    """
    global _ALL_LOADED
    if _ALL_LOADED or (name is not None and name in _REGISTRY):
        return
    if name is not None:
        from cnnscope.zoo._index import MODULE_OF

        if name in MODULE_OF:
            importlib.import_module(f"cnnscope.zoo.{MODULE_OF[name]}")
            if name in _REGISTRY:
                return
    # Every public module of the package is a family file: adding a family is adding a file.
    # The folder is this file's: importing the package root here would close a circle.
    for mod in sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                      if not m.name.startswith("_")):
        importlib.import_module(f"cnnscope.zoo.{mod}")
    _ALL_LOADED = True


def list_models(pattern: str = "*", family: str | None = None) -> list[str]:
    """Registered names matching a glob ``pattern`` (and ``family``, case-insensitive), sorted."""
    _ensure_loaded()
    names = [n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern.lower())]
    if family is not None:
        names = [n for n in names if _REGISTRY[n].family.lower() == family.lower()]
    return sorted(names, key=_natural_key)


def model_info(name: str) -> ModelInfo:
    """Metadata of a registered model; an unknown name raises with suggestions."""
    _ensure_loaded(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        _ensure_loaded()  # suggestions come from every model
        close = difflib.get_close_matches(name.lower(), list(_REGISTRY), n=4, cutoff=0.5)
        hint = f"did you mean: {', '.join(close)}?" if close else "run 'cnnscope zoo' to list the models"
        raise UnknownModelError(f"unknown model {name!r}", hint) from None


def get_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model by name; keyword arguments go to its builder."""
    return model_info(name).build(**kwargs)


def all_models() -> list[ModelInfo]:
    """Every registered model's metadata, in natural name order."""
    return [_REGISTRY[n] for n in list_models()]


def families() -> list[str]:
    """The distinct family names, sorted."""
    _ensure_loaded()
    return sorted({info.family for info in _REGISTRY.values()})


def _natural_key(name: str) -> list:
    # resnet18 < resnet34 < resnet101, not lexicographic.
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]
