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
from typing import Any, Callable, Iterator

import torch
from torch import nn

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

_SKIP_LOCK = threading.RLock()


def _no_init(tensor: Any, *args: Any, **kwargs: Any) -> Any:
    return tensor


def _no_reset(self: nn.Module, *args: Any, **kwargs: Any) -> None:
    return None


@contextmanager
def skip_init() -> Iterator[None]:
    """Every ``torch.nn.init.*_`` and torch's layers' ``reset_*`` do nothing inside.

    Parameters are allocated (``torch.empty``: the pages are not even touched) but never
    filled, so a CPU build costs little more than a meta one. Only for models whose
    values are never read (they are moved to meta). One at a time per process.
    """
    from cnnscope.trace.meta import _ORIGINAL_INIT, _ORIGINAL_RESETS

    with _SKIP_LOCK:
        saved_init = {name: getattr(torch.nn.init, name) for name in _ORIGINAL_INIT}
        saved_resets = [(cls, attr, cls.__dict__[attr]) for cls, attr, _ in _ORIGINAL_RESETS]
        try:
            for name in saved_init:
                setattr(torch.nn.init, name, _no_init)
            for cls, attr, _ in saved_resets:
                setattr(cls, attr, _no_reset)
            yield
        finally:
            for name, fn in saved_init.items():
                setattr(torch.nn.init, name, fn)
            for cls, attr, fn in saved_resets:
                setattr(cls, attr, fn)


# ---------------------------------------------------------------------- no network

_NET_LOCK = threading.RLock()
_net_depth = 0
_net_saved: dict[str, Any] = {}


@contextmanager
def no_downloads(what: str) -> Iterator[None]:
    """Any network access inside raises ``DownloadRefusedError`` naming what tried.

    torch.hub's downloader (weights of torchvision/timm builders), ``urllib`` and raw
    sockets (huggingface_hub, requests) are covered. Nested and threaded uses share one
    installation; for the length of a build, other threads of the process cannot open
    connections either (builds take milliseconds to seconds).
    """
    global _net_depth

    def refuse(target: str) -> None:
        raise DownloadRefusedError(
            f"building {what} tried to download {target}",
            "cnnscope never downloads: pass weights=None / weights_backbone=None / "
            "pretrained=False, or load the weights yourself and pass the module to the API")

    def hub_download(url: str, *args: Any, **kwargs: Any) -> None:
        refuse(str(url))

    def urlopen(url: Any, *args: Any, **kwargs: Any) -> None:
        refuse(str(getattr(url, "full_url", url)))

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> None:
        refuse(f"{host}:{port}")

    def connect(sock: Any, address: Any, *args: Any, **kwargs: Any) -> None:
        refuse(str(address))

    import urllib.request

    import torch.hub

    with _NET_LOCK:
        if _net_depth == 0:
            _net_saved.update(hub=torch.hub.download_url_to_file, urlopen=urllib.request.urlopen,
                              gai=socket.getaddrinfo, connect=socket.socket.connect,
                              connect_ex=socket.socket.connect_ex)
            torch.hub.download_url_to_file = hub_download
            # Refused before torch.hub prints "Downloading: ..." (into stdout) for a
            # download that never happens; torch.hub.load_state_dict_from_url(url) is
            # what a factory calls for weights.
            _net_saved["load_url"] = torch.hub.load_state_dict_from_url
            torch.hub.load_state_dict_from_url = hub_download
            urllib.request.urlopen = urlopen
            socket.getaddrinfo = getaddrinfo
            socket.socket.connect = connect
            socket.socket.connect_ex = connect
        _net_depth += 1
    try:
        yield
    finally:
        with _NET_LOCK:
            _net_depth -= 1
            if _net_depth == 0:
                torch.hub.download_url_to_file = _net_saved["hub"]
                torch.hub.load_state_dict_from_url = _net_saved["load_url"]
                urllib.request.urlopen = _net_saved["urlopen"]
                socket.getaddrinfo = _net_saved["gai"]
                socket.socket.connect = _net_saved["connect"]
                socket.socket.connect_ex = _net_saved["connect_ex"]
