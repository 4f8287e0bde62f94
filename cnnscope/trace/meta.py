"""Making a meta build fast: skip weight initialisation, pause the garbage collector.

On the meta device nothing is computed, but PyTorch still runs Python ``nn.init`` code
for every weight: pure overhead for shape propagation, about 70% of a ResNet-152 build.
Here ``nn.init`` is a no-op while a model is built on meta. (The shape kernels that
shortcut slow meta kernels while tracing are the op registry's, ``cnnscope.ops``.)
"""

from __future__ import annotations

import gc
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.conv import _ConvNd

import cnnscope.patches as patches

#: The initialisation functions of ``torch.nn.init`` (the in-place ones, ``*_``).
INIT_FUNCTIONS = [name for name in dir(torch.nn.init)
                  if name.endswith("_") and not name.startswith("_")]


@contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside, and none owed for it afterwards.

    Building or tracing makes tens of thousands of objects (modules, records, meta
    tensors) that live on; each collection they would trigger rescans every older object
    (15% of a zoo trace). Re-enabling the collector afterwards would make the first
    allocation scan them all at once (14 ms for ResNet-152's trace), so they are moved to
    the oldest generation first (``gc.freeze`` then ``gc.unfreeze``), where they are
    checked at the next full collection, like any long-lived object. When the program has
    frozen objects of its own (a pre-fork server does), they are left as they are and
    the collection is simply paid.
    """
    with GC_PAUSED:
        yield


def _pause_gc() -> bool:
    was_enabled = gc.isenabled()
    gc.disable()
    return was_enabled


def _resume_gc(was_enabled: bool) -> None:
    if was_enabled:
        if gc.get_freeze_count() == 0:
            patches.for_process("objects-aged", _age_objects)
        gc.enable()


def _age_objects() -> None:
    gc.freeze()
    gc.unfreeze()


GC_PAUSED = patches.scoped("gc-paused", install=_pause_gc, remove=_resume_gc,
                           observe=gc.isenabled)


@contextmanager
def building_on(device: torch.device | str) -> Iterator[None]:
    """``with torch.device(device)``; on meta, with the shortcuts of a lean build.

    On meta there are no initial values to set, so ``torch.nn.init.*_`` and torch's
    ``reset_parameters`` skip meta tensors, ``nn.Module.__setattr__`` stores plain values
    directly, and the garbage collector waits. The shortcuts are installed while at
    least one meta build runs (counted under a lock, so threads and nesting are safe);
    each one still does the full work for a tensor that is not on meta, so a CPU model
    built by another thread at the same moment is initialised as usual.
    """
    dev = torch.device(device)
    if dev.type != "meta":
        with dev:
            yield
        return
    with _SHORTCUTS, dev, paused_gc():
        yield


def _init_unless_meta(init: Any) -> Any:
    def init_unless_meta(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        if getattr(tensor, "is_meta", False):
            return tensor  # a meta tensor has no values to set
        return init(tensor, *args, **kwargs)

    return init_unless_meta


def _reset_unless_meta(reset: Any) -> Any:
    def reset_unless_meta(self: nn.Module) -> None:
        for t in (*self._parameters.values(), *self._buffers.values()):
            if t is not None and not t.is_meta:
                return reset(self)
        return None

    return reset_unless_meta


_PLAIN_VALUES = {int, float, bool, str, tuple, type(None)}
_module_setattr = torch.nn.Module.__setattr__


def _plain_setattr(self: torch.nn.Module, name: str, value: Any) -> None:
    """``nn.Module.__setattr__`` with a shortcut for plain values (strides, channel counts).

    A layer's constructor sets a dozen of these; the full method checks each against
    Parameter, Module and Buffer (a third of a model's build time) only to store it as a
    plain attribute. That is what this does directly, when the name is not already a
    parameter, buffer or submodule; anything else takes the full method.
    """
    if type(value) in _PLAIN_VALUES:
        d = self.__dict__
        if not (name in d.get("_parameters", ()) or name in d.get("_buffers", ())
                or name in d.get("_modules", ())):
            object.__setattr__(self, name, value)
            return
    _module_setattr(self, name, value)


# Methods of torch's layers that only set initial values: on meta there are none to set,
# and their tensor arithmetic (fan-in, bounds, fill_) is a quarter of a build.
RESETS = [(_ConvNd, "reset_parameters"), (nn.Linear, "reset_parameters"),
          (_NormBase, "reset_running_stats"), (_NormBase, "reset_parameters"),
          (nn.GroupNorm, "reset_parameters"), (nn.LayerNorm, "reset_parameters")]


_SHORTCUTS = patches.scoped("meta-build-shortcuts", [
    *(patches.Swap(torch.nn.init, name, _init_unless_meta) for name in INIT_FUNCTIONS),
    patches.Swap(torch.nn.Module, "__setattr__", lambda full: _plain_setattr),
    *(patches.Swap(cls, attr, _reset_unless_meta) for cls, attr in RESETS)])
