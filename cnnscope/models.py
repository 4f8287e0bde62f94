"""Turning what the user typed into a model: the one place model specs are resolved.

Every command and ``cnnscope.analyze`` accept the same specs:

- a zoo name: ``resnet50`` (see ``cnnscope zoo``);
- ``torchvision:resnet50`` / ``timm:xception41``: a builder of those packages when they
  are installed, always without pretrained weights (nothing is downloaded);
- ``path/to/file.py:factory``: a callable in a Python file that returns an ``nn.Module``,
  or an ``nn.Module`` class (or instance) defined there;
- ``package.module:factory``: the same, from an importable module.

Keyword arguments (``--arg key=value`` on the command line) go to the builder. User code
runs only when the user names it: a zoo name never imports anything outside cnnscope.
The default input of a user model is 3x224x224 unless its factory (or class, or
instance) has an ``input_size`` attribute, e.g. ``build.input_size = (3, 32, 32)``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import keyword
import os
import sys
import unicodedata
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from cnnscope.build import build_model
from cnnscope.errors import CnnscopeError, ModelLoadError, SpecRefusedError, first_line
from cnnscope.usercode import user_code
from cnnscope.zoo import model_info


@dataclass(frozen=True)
class ModelSource:
    """A buildable model: its display name, default input and builder."""

    name: str
    input_size: tuple[int, int, int] | None  # None when the source does not say
    builder: Callable[..., nn.Module]
    kwargs: tuple[tuple[str, Any], ...] = ()
    spec: str = ""  # what the user typed ("resnet50", "net.py:build"); lock files keep it
    origin: str = "zoo"  # "zoo" | "file" | "module" | "torchvision" | "timm"
    # The factory's example_inputs(batch): the inputs when no size is given (several
    # arguments, dict inputs). None: a tensor of input_size.
    example_inputs: Callable[[int], Any] | None = None

    def contained(self, what: str = "forward pass"):
        """A context for running this model's code: user code is contained (``user_code``)."""
        if self.origin == "zoo":
            return nullcontext()
        return user_code(f"{what} of {self.spec or self.name}")

    def build(self, device: torch.device | str = "meta") -> nn.Module:
        """Instantiate on ``device`` (meta: no memory, no initialisation arithmetic).

        A builder from user code that raises, or returns something that is not an
        ``nn.Module``, gives a ``ModelLoadError`` naming the spec.
        """
        kwargs = dict(self.kwargs)
        guard = nullcontext() if self.origin == "zoo" else user_code(
            f"model factory {self.spec or self.name}")
        try:
            with guard:
                model = build_model(self.builder, kwargs, device, self.spec or self.name)
        except CnnscopeError:
            raise
        except Exception as exc:
            # The zoo's own builders keep their traceback unless the user's --arg values
            # caused the failure; user code always gets a one-line message.
            if self.origin == "zoo" and not kwargs:
                raise
            args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
            raise ModelLoadError(
                f"building {self.spec or self.name}{f' with {args}' if args else ''} raised "
                f"{type(exc).__name__}: {first_line(exc)}",
                "check the factory and its --arg values",
            ) from None
        if not isinstance(model, nn.Module):
            raise ModelLoadError(
                f"{self.spec or self.name} returned {type(model).__name__}, not an nn.Module",
                "the factory must return a torch.nn.Module",
            )
        return model


def resolve(spec: str, **kwargs: Any) -> ModelSource:
    """Resolve a model spec (see the module docstring) into a ``ModelSource``.

    Unknown zoo names raise ``UnknownModelError`` with suggestions; user specs that
    cannot be loaded raise ``ModelLoadError`` naming the file or module.
    """
    return _resolve(spec, kwargs, defined_only=False)


def resolve_defined(spec: str, kwargs: dict[str, Any] | None = None) -> ModelSource:
    """``resolve`` for a spec that comes from data (a lock file), not from the user.

    After the colon only one identifier is looked up, in the module's own namespace (no
    attribute walk, no module ``__getattr__``), and it must be a function or an
    ``nn.Module`` subclass defined in that file or module: an imported name
    (``os:system`` re-exported by a model file), an instance or a dunder raises
    ``SpecRefusedError``. A typed spec keeps ``resolve``'s meaning: the user chose it.
    """
    return _resolve(spec, dict(kwargs or {}), defined_only=True)


def _resolve(spec: str, kwargs: dict[str, Any], *, defined_only: bool) -> ModelSource:
    if not isinstance(spec, str) or not spec.strip():
        raise ModelLoadError(f"empty model spec {spec!r}", "give a zoo name or file.py:factory")
    spec = spec.strip()
    kw = tuple(sorted(kwargs.items()))
    origin = spec_origin(spec)
    if origin == "zoo":
        if spec.endswith(".py"):
            raise ModelLoadError(f"{spec!r} names a file but no factory",
                                 f"write it as {spec}:FACTORY, e.g. {spec}:build")
        info = model_info(spec)  # zoo name first; unknown names fail with did-you-mean
        return ModelSource(name=info.name, input_size=info.input_size, builder=info.factory,
                           kwargs=kw, spec=info.name, origin="zoo")
    prefix, attr = spec.rsplit(":", 1)
    if defined_only and origin in ("file", "module"):
        check_spec_name(attr, spec)
    if not attr:
        raise ModelLoadError(f"model spec {spec!r} has no factory after ':'",
                             "write it as file.py:factory or package.module:factory")
    if origin == "torchvision":
        return _torchvision(spec, attr, kw)
    if origin == "timm":
        return _timm(spec, attr, kw)
    if origin == "file":
        module = _load_file(prefix)
        # Tables show "custom_model:build"; lock files keep the path as typed.
        name = f"{Path(prefix).stem}:{attr}"
    else:
        module = _import_module(prefix)
        name = spec
    obj = _defined_attr(module, attr, spec) if defined_only else _get_attr(module, attr, prefix)
    builder, size = _as_builder(obj, spec)
    example = getattr(obj, "example_inputs", None)
    return ModelSource(name=name, input_size=size, builder=builder, kwargs=kw, spec=spec,
                       origin=origin, example_inputs=example if callable(example) else None)


def spec_origin(spec: str) -> str:
    """What ``resolve(spec)`` would load: "zoo", "torchvision", "timm", "file" or "module".

    Reads only the text: nothing is imported (the lock-file policy relies on it).
    """
    spec = spec.strip()
    if ":" not in spec or _looks_like_drive(spec):
        return "zoo"
    prefix = spec.rsplit(":", 1)[0]
    if prefix in ("torchvision", "timm"):
        return prefix
    if prefix.endswith(".py") or "/" in prefix or os.sep in prefix:
        return "file"
    return "module"


# ---------------------------------------------------------------------- user code



def _looks_like_drive(spec: str) -> bool:
    # "C:\\models\\net.py" has a colon that is not the factory separator.
    return len(spec) > 2 and spec[1] == ":" and spec[0].isalpha() and spec[2] in "\\/" \
        and spec.count(":") == 1


_FILE_CACHE: dict[tuple[str, int], Any] = {}


def _load_file(path_text: str):
    """Import a user's Python file once per (path, mtime); its folder is importable."""
    path = Path(path_text).expanduser()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        raise ModelLoadError(f"model file {path_text!r} {what}",
                             "give the path of a .py file, e.g. models/net.py:build")
    path = path.resolve()
    key = (str(path), path.stat().st_mtime_ns)
    if key in _FILE_CACHE:
        return _FILE_CACHE[key]
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"cnnscope_user_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {path_text!r} as Python", "is it a .py file?")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look their module up here
    # Sibling imports ("from layers import Block") work as when running the file.
    sys.path.insert(0, str(path.parent))
    try:
        with user_code(f"model file {path_text!r}"):
            spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if isinstance(exc, (KeyboardInterrupt, CnnscopeError)):
            raise
        where = ""
        if isinstance(exc, SyntaxError) and exc.lineno:
            where = f" (line {exc.lineno})"
        raise ModelLoadError(
            f"importing model file {path_text!r} raised {type(exc).__name__}{where}: "
            f"{first_line(exc)}"
        ) from None
    finally:
        try:
            sys.path.remove(str(path.parent))
        except ValueError:
            pass
    _FILE_CACHE[key] = module
    return module


def _import_module(dotted: str):
    try:
        with user_code(f"module {dotted!r}"):
            return importlib.import_module(dotted)
    except CnnscopeError:
        raise
    except ModuleNotFoundError as exc:
        missing = exc.name or dotted
        raise ModelLoadError(
            f"cannot import module {dotted!r}: no module named {missing!r}",
            "is it installed, or did you mean a file (path/to/file.py:factory)?",
        ) from None
    except Exception as exc:
        raise ModelLoadError(
            f"importing module {dotted!r} raised {type(exc).__name__}: {first_line(exc)}"
        ) from None


def _get_attr(module, attr: str, where: str):
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n, v in vars(module).items()
                            if not n.startswith("_") and _is_model_like(v)
                            and getattr(v, "__module__", module.__name__) == module.__name__)
            hint = (f"model factories there: {', '.join(public)}" if public
                    else "define a function returning an nn.Module, or an nn.Module class")
            raise ModelLoadError(f"{where} has no attribute {attr!r}", hint)
        obj = getattr(obj, part)
    return obj


def check_spec_name(attr: str, spec: str) -> None:
    """Refuse what may not follow the colon of a spec read from data: anything but one
    plain identifier (an attribute chain, a dunder, a keyword, non-NFKC text)."""
    if attr.isidentifier() and not keyword.iskeyword(attr) and not attr.startswith("__") \
            and unicodedata.normalize("NFKC", attr) == attr:
        return
    raise SpecRefusedError(
        f"a lock may not name {spec!r}: after the colon comes one identifier, a function "
        f"or nn.Module class defined in that file or module, not {attr!r}",
        "name the factory itself, e.g. net.py:build")


def _defined_attr(module, attr: str, spec: str):
    """``module``'s own function or nn.Module class ``attr``, read from its namespace."""
    obj = vars(module).get(attr)
    defined = obj is not None and (inspect.isfunction(obj) or (
        inspect.isclass(obj) and issubclass(obj, nn.Module)))
    if defined and getattr(obj, "__module__", None) == module.__name__ \
            and getattr(obj, "__qualname__", None) == attr:
        return obj
    what = "is not defined there" if obj is None else \
        "is not a function or nn.Module class defined there (imported, or assigned)"
    raise SpecRefusedError(f"a lock may not name {spec!r}: {attr!r} {what}",
                           "a lock may name only a factory defined in the file or module itself")


def _is_model_like(obj: Any) -> bool:
    if isinstance(obj, nn.Module):
        return True
    if inspect.isclass(obj):
        return issubclass(obj, nn.Module)
    return inspect.isfunction(obj)


def _as_builder(obj: Any, spec: str) -> tuple[Callable[..., nn.Module], tuple[int, int, int] | None]:
    """A builder for an nn.Module class, a factory function or an nn.Module instance."""
    size = _input_size_attr(obj, spec)
    if isinstance(obj, nn.Module):
        instance = obj

        def existing(**kwargs: Any) -> nn.Module:
            if kwargs:
                raise ModelLoadError(f"{spec} is an nn.Module instance; --arg needs a factory",
                                     "name a function or class instead")
            return instance

        return existing, size
    if inspect.isclass(obj):
        if issubclass(obj, nn.Module):
            return obj, size
        raise ModelLoadError(f"{spec} is the class {obj.__name__}, not an nn.Module subclass",
                             "name a function returning an nn.Module, or an nn.Module class")
    if callable(obj):  # a function, a functools.partial, an object with __call__
        return obj, size
    raise ModelLoadError(
        f"{spec} is a value of type {type(obj).__name__}, not a model factory",
        "name a function returning an nn.Module, or an nn.Module class",
    )


def _input_size_attr(obj: Any, spec: str) -> tuple | None:
    size = getattr(obj, "input_size", None)
    if size is None:
        return None
    try:  # one per-sample shape of rank 1-4, or a tuple of them (several inputs)
        sizes = [tuple(int(n) for n in s) for s in size] \
            if all(isinstance(s, (tuple, list)) for s in size) else [tuple(int(n) for n in size)]
    except (TypeError, ValueError):
        sizes = [()]
    if not sizes or any(not 1 <= len(s) <= 4 or any(n < 1 for n in s) for s in sizes):
        raise ModelLoadError(f"{spec}: input_size attribute {getattr(obj, 'input_size')!r} "
                             "is not (C, H, W) (or C, (C, L), (C, T, H, W), or a tuple of them)",
                             "set e.g. build.input_size = (3, 224, 224)")
    return sizes[0] if len(sizes) == 1 else tuple(sizes)


def module_input_size(model: nn.Module) -> tuple | None:
    """The per-sample input a built module says it was made for, or None.

    Its ``input_size`` attribute (a user's convention) first; then timm's
    ``pretrained_cfg["input_size"]`` (``default_cfg`` in older timm), which every
    ``timm.create_model`` result carries; then, for a torchvision module, its family's
    input (``thirdparty.torchvision_module_input``). Nothing is downloaded.
    """
    own = getattr(model, "input_size", None)
    if own is not None:
        return _input_size_attr(model, type(model).__name__)
    for attr in ("pretrained_cfg", "default_cfg"):
        cfg = getattr(model, attr, None)
        size = cfg.get("input_size") if isinstance(cfg, dict) else None
        if isinstance(size, (tuple, list)) and len(size) == 3 \
                and all(isinstance(n, int) and n > 0 for n in size):
            return tuple(size)
    if type(model).__module__.startswith("torchvision.models"):
        import cnnscope.thirdparty as thirdparty

        return thirdparty.torchvision_module_input(model)
    return None


# ---------------------------------------------------------------------- other zoos


def _torchvision(spec: str, name: str, kw: tuple) -> ModelSource:
    import cnnscope.thirdparty as thirdparty

    tvm = thirdparty.import_package("torchvision", spec, "torchvision.models")
    try:
        builder = tvm.get_model_builder(name)
    except (ValueError, KeyError):
        raise ModelLoadError(f"torchvision has no model {name!r}",
                             "see torchvision.models.list_models()") from None
    thirdparty.torchvision_kwargs(builder, spec, dict(kw))  # refuses weights early
    kw = tuple((k, v) for k, v in kw if k not in thirdparty.TORCHVISION_WEIGHT_ARGS)
    size = thirdparty.torchvision_input(tvm, name) if hasattr(tvm, "get_model_weights") \
        else ((3, 299, 299) if name == "inception_v3" else (3, 224, 224))
    if name.startswith("vit_"):
        # ViT's position embedding is built for its image_size argument (default 224), not
        # for the size of the default weights (vit_h_14's SWAG weights: 518).
        side = int(dict(kw).get("image_size", 224))
        size = (3, side, side)

    def build(**kwargs: Any) -> nn.Module:
        return builder(**thirdparty.torchvision_kwargs(builder, spec, kwargs))

    return ModelSource(name=spec, input_size=size, builder=build, kwargs=kw, spec=spec,
                       origin="torchvision")


def _timm(spec: str, name: str, kw: tuple) -> ModelSource:
    import cnnscope.thirdparty as thirdparty

    timm = thirdparty.import_package("timm", spec)
    if not timm.is_model(name):
        raise ModelLoadError(f"timm has no model {name!r}", "see timm.list_models()")
    if dict(kw).get("pretrained"):
        raise ModelLoadError("cnnscope never loads weights", "drop the pretrained argument")
    kw = tuple((k, v) for k, v in kw if k != "pretrained")
    size = None
    try:
        cfg = timm.models.get_pretrained_cfg(name)
        size = tuple(cfg.input_size) if cfg is not None and cfg.input_size else None
    except Exception:  # older timm: no pretrained cfg lookup; fall back to the default
        size = None

    def build(**kwargs: Any) -> nn.Module:
        return timm.create_model(name, pretrained=False, **kwargs)

    return ModelSource(name=spec, input_size=size, builder=build, kwargs=kw, spec=spec,
                       origin="timm")
