"""Every global patch cnnscope makes is scoped: inside its context the patched object is
replaced, after it (also when the body raises) every original object is back, the very
same object. docs/architecture.md lists them; this test keeps that list
honest."""

import os
import socket
import sys
import urllib.request

import pytest
import torch
import torch.hub
import torch.nn.functional as F
from torch import nn

from cnnscope.trace import attention, meta


def _snapshot() -> dict:
    """Identity of every object some cnnscope context swaps out."""
    from torch.nn.modules.batchnorm import _NormBase
    from torch.nn.modules.conv import _ConvNd

    objects = {f"nn.init.{n}": getattr(nn.init, n) for n in meta.INIT_FUNCTIONS}
    objects.update({
        "Module.__setattr__": nn.Module.__dict__["__setattr__"],
        "ConvNd.reset_parameters": _ConvNd.__dict__["reset_parameters"],
        "Linear.reset_parameters": nn.Linear.__dict__["reset_parameters"],
        "NormBase.reset_parameters": _NormBase.__dict__["reset_parameters"],
        "F.scaled_dot_product_attention": F.scaled_dot_product_attention,
        "torch.hub.download_url_to_file": torch.hub.download_url_to_file,
        "torch.hub.load_state_dict_from_url": torch.hub.load_state_dict_from_url,
        "urllib.request.urlopen": urllib.request.urlopen,
        "socket.getaddrinfo": socket.getaddrinfo,
        "socket.socket.connect": socket.socket.connect,
        "socket.socket.connect_ex": socket.socket.connect_ex,
        "sys.stdout": sys.stdout,
    })
    return objects


def _changed(before: dict) -> set:
    after = _snapshot()
    return {k for k in before if after[k] is not before[k]}


def _scopes():
    from cnnscope.build import no_downloads, skip_init
    from cnnscope.usercode import stdout_to_stderr

    return {
        "building_on(meta)": (lambda: meta.building_on("meta"),
                              {"Module.__setattr__", "nn.init.kaiming_uniform_"}),
        "one_op_attention": (attention.one_op_attention, {"F.scaled_dot_product_attention"}),
        "skip_init": (skip_init, {"nn.init.kaiming_uniform_", "Linear.reset_parameters"}),
        "no_downloads": (lambda: no_downloads("a test"),
                         {"torch.hub.download_url_to_file", "torch.hub.load_state_dict_from_url",
                          "urllib.request.urlopen", "socket.getaddrinfo",
                          "socket.socket.connect"}),
        "stdout_to_stderr": (stdout_to_stderr, {"sys.stdout"}),
    }


@pytest.mark.parametrize("name", sorted(_scopes()))
@pytest.mark.parametrize("how", ["returns", "raises"])
def test_a_patch_holds_inside_its_scope_and_is_undone_after(name, how):
    context, patched = _scopes()[name]
    before = _snapshot()
    try:
        with context():
            inside = _changed(before)
            assert patched <= inside, f"{name} should replace {sorted(patched - inside)}"
            if how == "raises":
                raise KeyError("the body failed")
    except KeyError:
        pass
    assert _changed(before) == set(), f"{name} left patched: {sorted(_changed(before))}"


def test_stdout_to_stderr_restores_file_descriptor_1():
    from cnnscope.usercode import stdout_to_stderr

    before = os.fstat(1)
    with stdout_to_stderr():
        assert os.fstat(1).st_ino == os.fstat(2).st_ino
    after = os.fstat(1)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)


def test_nested_and_repeated_meta_builds_leave_nothing_patched():
    before = _snapshot()
    with meta.building_on("meta"):
        with meta.building_on("meta"):
            nn.Linear(3, 4)
        assert "Module.__setattr__" in _changed(before)  # the outer build still runs
    assert _changed(before) == set()
