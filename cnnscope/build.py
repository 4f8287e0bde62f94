"""Building a model whatever its builder does: the meta device first, the CPU when it must.

``build_model`` calls a builder under ``with torch.device("meta")`` (nothing allocated,
no initialisation arithmetic: ``cnnscope.trace.meta.building_on``). Some builders compute
with tensors while they build: torchvision's RegNets derive their widths with
``torch.arange(...).tolist()``, which a meta tensor cannot answer ("Cannot copy out of meta
tensor"). Those are built again on the CPU with every ``torch.nn.init`` function and the
``reset_parameters`` of torch's layers turned into no-ops (the ``torch.nn.utils.skip_init``
idea: parameters are allocated but never written), then moved to meta, where the trace
runs as usual. Which way a model was built is kept per model (``build_path``) and shown
in JSON and with ``--verbose``.

Building never reaches the network: ``no_downloads`` turns any attempt (torch.hub,
urllib, a socket: a builder fetching backbone weights, a hub config) into a one-line
``DownloadRefusedError`` naming what tried to download.
"""

from __future__ import annotations

import re
import socket
import threading
import weakref
from contextlib import contextmanager
from typing import Any, Callable, ContextManager, Iterator

import torch
from torch import nn

import cnnscope.patches as patches
from cnnscope.errors import ModelLoadError

#: How each model was built: "meta", "cpu-skip-init" (built on the CPU without
#: initialisation, then moved to meta) or "cpu" (asked for a real device).
BUILD_META = "meta"
BUILD_CPU_SKIP_INIT = "cpu-skip-init"

_BUILD_PATHS: "weakref.WeakKeyDictionary[nn.Module, str]" = weakref.WeakKeyDictionary()

# What a builder that computes with tensors raises under the meta device.
_META_FAILURE = re.compile(
    r"meta tensor|meta device|'Meta' backend|on meta|data-dependent|"
    r"cannot be called on meta|_local_scalar_dense", re.IGNORECASE)


class DownloadRefusedError(ModelLoadError):
    """Building (or running) a model tried to reach the network."""


def build_path(model: nn.Module) -> str:
    """How ``model`` was built by ``build_model`` ("meta", "cpu-skip-init"...; "" if unknown)."""
    try:
        return _BUILD_PATHS.get(model, "")
    except TypeError:  # not weak-referenceable
        return ""


def is_meta_failure(exc: BaseException) -> bool:
    """True when ``exc`` is what a computation on meta tensors raises (no values there)."""
    return bool(_META_FAILURE.search(f"{type(exc).__name__}: {exc}"))


def build_model(builder: Callable[..., nn.Module], kwargs: dict[str, Any],
                device: torch.device | str, what: str) -> nn.Module:
    """``builder(**kwargs)`` on ``device``; on meta, the CPU without init when meta cannot.

    ``what`` names the model in a refused-download message. Exceptions from the builder
    propagate (the caller turns them into a one-line message); when both the meta and
    the CPU build fail, the meta build's exception is raised.
    """
    from cnnscope.trace.meta import building_on

    dev = torch.device(device)
    with no_downloads(what):
        try:
            with building_on(dev):
                model = builder(**kwargs)
        except Exception as exc:
            if dev.type != "meta" or not is_meta_failure(exc):
                raise
            first = exc
        else:
            _remember(model, BUILD_META if dev.type == "meta" else dev.type)
            return model
        try:
            with skip_init(), torch.device("cpu"):
                model = builder(**kwargs)
        except Exception:
            raise first from None
    if isinstance(model, nn.Module):
        model = model.to("meta")
        _remember(model, BUILD_CPU_SKIP_INIT)
    return model


def _remember(model: Any, path: str) -> None:
    if isinstance(model, nn.Module):
        try:
            _BUILD_PATHS[model] = path
        except TypeError:
            pass


# ---------------------------------------------------------------------- skip init


def _no_init(tensor: Any, *args: Any, **kwargs: Any) -> Any:
    return tensor


def _no_reset(self: nn.Module, *args: Any, **kwargs: Any) -> None:
    return None


def _skip_init_swaps() -> list:
    from cnnscope.trace.meta import INIT_FUNCTIONS, RESETS

    return [*(patches.Swap(torch.nn.init, name, lambda below: _no_init)
              for name in INIT_FUNCTIONS),
            *(patches.Swap(cls, attr, lambda below: _no_reset) for cls, attr in RESETS)]


_SKIP_INIT = patches.scoped("skip-init", _skip_init_swaps)


def skip_init() -> ContextManager[None]:
    """Every ``torch.nn.init.*_`` and torch's layers' ``reset_*`` do nothing inside.

    Parameters are allocated (``torch.empty``: the pages are not even touched) but never
    filled, so a CPU build costs little more than a meta one. Only for models whose
    values are never read (they are moved to meta). Nested and threaded uses share one
    installation (``cnnscope.patches``).
    """
    return _SKIP_INIT


# ---------------------------------------------------------------------- no network


def _refuse(target: str) -> None:
    what = getattr(_refusing, "what", None) or "a model"
    raise DownloadRefusedError(
        f"building {what} tried to download {target}",
        "cnnscope never downloads: pass weights=None / weights_backbone=None / "
        "pretrained=False, or load the weights yourself and pass the module to the API")


def _hub_download(url: str, *args: Any, **kwargs: Any) -> None:
    _refuse(str(url))


def _urlopen(url: Any, *args: Any, **kwargs: Any) -> None:
    _refuse(str(getattr(url, "full_url", url)))


def _getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> None:
    _refuse(f"{host}:{port}")


def _connect(sock: Any, address: Any, *args: Any, **kwargs: Any) -> None:
    _refuse(str(address))


def _network_swaps() -> list:
    import urllib.request

    import torch.hub

    # torch.hub.load_state_dict_from_url(url) is what a factory calls for weights: refused
    # before torch.hub prints "Downloading: ..." (into stdout) for a download that never
    # happens.
    return [patches.Swap(torch.hub, "download_url_to_file", lambda below: _hub_download),
            patches.Swap(torch.hub, "load_state_dict_from_url", lambda below: _hub_download),
            patches.Swap(urllib.request, "urlopen", lambda below: _urlopen),
            patches.Swap(socket, "getaddrinfo", lambda below: _getaddrinfo),
            patches.Swap(socket.socket, "connect", lambda below: _connect),
            patches.Swap(socket.socket, "connect_ex", lambda below: _connect)]


_NO_DOWNLOADS = patches.scoped("no-downloads", _network_swaps)
# What the outermost build of each thread is (the message names it); another thread that
# reaches the network while a build runs is refused as "a model".
_refusing = threading.local()


@contextmanager
def no_downloads(what: str) -> Iterator[None]:
    """Any network access inside raises ``DownloadRefusedError`` naming what tried.

    torch.hub's downloader (weights of torchvision/timm builders), ``urllib`` and raw
    sockets (huggingface_hub, requests) are covered. Nested and threaded uses share one
    installation; for the length of a build, other threads of the process cannot open
    connections either (builds take milliseconds to seconds).
    """
    outer = getattr(_refusing, "what", None)
    _refusing.what = outer or what
    try:
        with _NO_DOWNLOADS:
            yield
    finally:
        _refusing.what = outer
