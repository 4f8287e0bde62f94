"""``torchvision::deform_conv2d`` in any test environment, and small models that call it.

Where torchvision loads, its own op is used. Where it does not (the default test
environment), ``ensure_op`` defines a stand-in with torchvision's schema through
``torch.library``: a meta kernel (as torchvision's ``_meta_registrations.py``: the output
size is the offsets' size), a CPU kernel (the counted loop reference, ``deform_reference``),
and an autograd formula calling ``torchvision::_deform_conv2d_backward`` (meta only), so a
training trace runs the same ops as with torchvision. Test-only: cnnscope never defines ops
of another library.
"""

from __future__ import annotations

import torch
from torch import nn

from tests.optional import optional_import
from tests.trace import deform_reference as ref

# torchvision 0.28's schemas (torch.ops.torchvision.deform_conv2d.default._schema).
_ARGS = ("Tensor input, Tensor weight, Tensor offset, Tensor mask, Tensor bias, SymInt stride_h, "
         "SymInt stride_w, SymInt pad_h, SymInt pad_w, SymInt dilation_h, SymInt dilation_w, "
         "SymInt groups, SymInt offset_groups, bool use_mask")
SCHEMA = f"deform_conv2d({_ARGS}) -> Tensor"
BACKWARD_SCHEMA = (f"_deform_conv2d_backward(Tensor grad, {_ARGS}) "
                   "-> (Tensor, Tensor, Tensor, Tensor, Tensor)")

_library: list = []  # the stand-in's torch.library.Library, alive for the process


def ensure_op() -> str:
    """``"torchvision"`` when torchvision's op is loaded, else ``"stand-in"`` (defined once)."""
    tv = optional_import("torchvision")
    if tv is not None:
        import torchvision.ops  # noqa: F401 - loads the compiled ops and their meta kernels

        return "torchvision"
    if not _library:
        _define()
    return "stand-in"


def _define() -> None:
    lib = torch.library.Library("torchvision", "DEF")  # noqa: TOR901 - a test stand-in
    lib.define(SCHEMA)
    lib.define(BACKWARD_SCHEMA)
    lib.impl("deform_conv2d", _meta, "Meta")
    lib.impl("deform_conv2d", _cpu, "CPU")
    lib.impl("_deform_conv2d_backward", _meta_backward, "Meta")
    _library.append(lib)
    torch.library.register_autograd("torchvision::deform_conv2d", _backward,
                                    setup_context=_setup_context, lib=lib)


def _meta(input, weight, offset, mask, bias, *settings):
    return input.new_empty((input.shape[0], weight.shape[0], offset.shape[2], offset.shape[3]))


def _cpu(input, weight, offset, mask, bias, sh, sw, ph, pw, dh, dw, groups, offset_groups,
         use_mask):
    out = ref.deform_conv2d(input.tolist(), weight.tolist(), offset.tolist(), mask.tolist(),
                            bias.tolist(), (sh, sw), (ph, pw), (dh, dw), groups, offset_groups,
                            use_mask)
    return torch.tensor(out, dtype=input.dtype)


def _meta_backward(grad, input, weight, offset, mask, bias, *settings):
    return tuple(t.new_empty(t.shape) for t in (input, weight, offset, mask, bias))


def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:5])
    ctx.settings = inputs[5:]


def _backward(ctx, grad):
    grads = torch.ops.torchvision._deform_conv2d_backward(grad, *ctx.saved_tensors, *ctx.settings)
    return (*grads, *(None,) * len(ctx.settings))


class DeformBlock(nn.Module):
    """A DCN layer: offsets (and, with ``mask``, a sigmoid mask) from a regular convolution of
    the input (``offset_kernel``: its size, odd, padded to keep the output's size), then
    ``torchvision::deform_conv2d`` with its own weight and bias."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1,
                 padding: int = 1, dilation: int = 1, groups: int = 1, offset_groups: int = 1,
                 mask: bool = True, offset_kernel: int | None = None) -> None:
        super().__init__()
        k_points = kernel * kernel
        ok = kernel if offset_kernel is None else offset_kernel
        op = padding if offset_kernel is None else (ok - 1) // 2  # keep the deform's output size
        od = dilation if offset_kernel is None else 1
        self.offset = nn.Conv2d(c_in, 2 * offset_groups * k_points, ok, stride, op, od)
        self.mask = nn.Conv2d(c_in, offset_groups * k_points, ok, stride, op, od) if mask else None
        self.weight = nn.Parameter(torch.randn(c_out, c_in // groups, kernel, kernel))
        self.bias = nn.Parameter(torch.randn(c_out))
        self.settings = (stride, stride, padding, padding, dilation, dilation, groups,
                         offset_groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset = self.offset(x)
        if self.mask is not None:
            mask = torch.sigmoid(self.mask(x))
        else:  # what torchvision.ops.deform_conv2d passes without a mask
            mask = torch.zeros((x.shape[0], 1), device=x.device, dtype=x.dtype)
        return torch.ops.torchvision.deform_conv2d(x, self.weight, offset, mask, self.bias,
                                                   *self.settings, self.mask is not None)
