"""Attention and the other ops of real models are counted the same on every device.

The reference for MACs is PyTorch's own ``FlopCounterMode`` on real tensors (it counts a
multiply-add as two FLOPs, so MACs = its total / 2); the FLOPs are written out as the
math path's arithmetic.
"""

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

from cnnscope.ops import registry
from cnnscope.ops.attention import attention_cost
from cnnscope.trace.tracer import trace_module


class SDPA(nn.Module):
    def __init__(self, heads, kv_heads, l, s, e, ev, mask=False, causal=False):
        super().__init__()
        self.shape = heads, kv_heads, l, s, e, ev
        self.mask, self.causal = mask, causal

    def forward(self, x):
        h, hk, l, s, e, ev = self.shape
        b = x.shape[0]
        if x.is_cuda:  # the fused CUDA kernels take half precision
            x = x.half()
        q = x.new_zeros(b, h, l, e) + x.mean()  # derived from the input: a dataflow op
        k = x.new_zeros(b, hk, s, e) + x.mean()
        v = x.new_zeros(b, hk, s, ev) + x.mean()
        mask = x.new_zeros(l, s) if self.mask else None
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=self.causal,
                                              enable_gqa=h != hk)


def _sdpa_macs(report):
    return sum(r.macs for r in report.layers)


def _flop_counter_macs(model, x):
    # FlopCounterMode has no formula for the CPU flash kernel: force the math path.
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


CASES = [
    # heads, kv_heads, L, S, E, Ev, mask, causal
    (3, 3, 197, 197, 64, 64, False, False),  # ViT-tiny's attention
    (2, 2, 5, 7, 8, 4, False, False),  # Ev != E: the math path on every device
    (4, 4, 16, 16, 32, 32, True, False),  # additive mask
    (4, 4, 16, 16, 32, 32, False, True),  # causal
]


@pytest.mark.parametrize("case", CASES)
def test_sdpa_macs_equal_flop_counter_and_agree_between_meta_and_cpu(case):
    *shape, mask, causal = case
    model = SDPA(*shape, mask=mask, causal=causal)
    x = torch.randn(2, 1)
    h, _, l, s, e, ev = shape
    expected_macs = 2 * h * l * s * e + 2 * h * l * s * ev  # batch 2: scores + weighted sum
    assert _flop_counter_macs(model, x) == expected_macs
    meta = trace_module(model, (1,), 2)
    assert meta.unsupported == ()
    assert _sdpa_macs(meta) == expected_macs
    for backend in (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION):
        if backend is SDPBackend.FLASH_ATTENTION and (e != ev or mask):
            continue  # the CPU flash kernel takes neither
        with sdpa_kernel(backend):
            cpu = trace_module(model, (1,), 2, device="cpu")
        assert cpu.unsupported == ()
        assert cpu.totals.macs == meta.totals.macs
        assert cpu.totals.flops == meta.totals.flops


def test_cpu_flash_kernel_is_counted_under_the_user_level_name():
    # The CPU runs _scaled_dot_product_flash_attention_for_cpu; the row is the call the
    # user wrote, with the same name and cost as on meta.
    model = SDPA(3, 3, 197, 197, 64, 64)
    seen = []

    class Ops(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            seen.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        with Ops():
            model(torch.randn(1, 1))
        report = trace_module(model, (1,), 1, device="cpu")
    assert "_scaled_dot_product_flash_attention_for_cpu" in seen
    rows = [r for r in report.layers if "attention" in r.type]
    assert [(r.name, r.type) for r in rows] == [("scaled_dot_product_attention",) * 2]
    bh, l, s, e = 3, 197, 197, 64
    assert rows[0].macs == bh * l * s * e * 2
    # 2 x MACs + scaling q and k (by sqrt(scale) each) + softmax 3 per score
    assert rows[0].flops == 2 * rows[0].macs + bh * (l * e + s * e) + 3 * bh * l * s


class _TimmAttention(nn.Module):
    """timm's Attention: qkv, heads split by a permute, SDPA, transpose(1, 2).reshape."""

    def __init__(self, dim=32, heads=4, drop=0.0, heads_dim=True):
        super().__init__()
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.heads, self.drop, self.heads_dim = heads, drop, heads_dim

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads) \
            .permute(2, 0, 3, 1, 4).unbind(0)
        if not self.heads_dim:  # 3-D (B*H, N, D): the CPU flash kernel refuses it
            q, k, v = (t.reshape(b * self.heads, n, -1) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.drop if self.training else 0.0)
        return self.proj(y.reshape(b, self.heads, n, -1).transpose(1, 2).reshape(b, n, c))


def _rows(report):
    return [dataclasses.astuple(r) for r in report.layers]


@pytest.mark.parametrize("kwargs, train, backward", [
    (dict(), False, False),  # the CPU's flash kernel vs one op on meta
    (dict(drop=0.1), True, False),  # dropout: the math path, and the flash kernel's layout
    (dict(), True, True),  # autograd: flash (+ its backward) vs the math path on meta
    (dict(heads_dim=False), False, False),  # 3-D: the math path on the CPU
])
def test_rows_are_the_same_on_meta_and_cpu(kwargs, train, backward):
    # Issue 22 item 3: same rows, names, counts and shapes on every device. Before, the
    # CPU named the row _scaled_dot_product_flash_attention_for_cpu, and the reshape after
    # it was a view on the CPU but a clone + _unsafe_view on meta (another layout).
    torch.manual_seed(0)
    cpu_model = _TimmAttention(**kwargs)
    meta = trace_module(_TimmAttention(**kwargs).to("meta"), (10, 32), 2, train=train,
                        backward=backward)
    cpu = trace_module(cpu_model, (10, 32), 2, device="cpu", train=train, backward=backward)
    assert _rows(cpu) == _rows(meta)
    assert cpu.totals == meta.totals and cpu.unsupported == meta.unsupported == ()
    attention = [r for r in meta.layers if r.type == "scaled_dot_product_attention"]
    assert len(attention) == 1
    b, h, n, d = 2, 4, 10, 8
    assert attention[0].macs == b * h * n * n * (d + d)
    if backward:  # the math path's backward: dV, dP, dQ, dK products
        assert attention[0].backward_macs == 2 * b * h * n * n * (d + d)


def test_multihead_attention_rows_are_the_same_on_meta_and_cpu():
    model = nn.Sequential(_Mha()).eval()
    meta = trace_module(nn.Sequential(_Mha()).eval().to("meta"), (10, 64), 2)
    cpu = trace_module(model, (10, 64), 2, device="cpu")
    assert _rows(cpu) == _rows(meta)


class _Mha(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(64, 4, batch_first=True)

    def forward(self, x):
        return self.attn(x, x, x, need_weights=False)[0]


def test_attention_cost_written_out():
    c = attention_cost(6, 5, 7, 8, 4, masked=True)
    assert c.macs == 6 * 5 * 7 * 8 + 6 * 5 * 7 * 4
    assert c.flops == 2 * c.macs + 6 * (5 * 8 + 7 * 8) + 6 * 5 * 7 * (3 + 1)


def test_multihead_attention_fast_path_counts_as_the_unfused_ops():
    # On the CPU in eval mode nn.MultiheadAttention runs one fused op,
    # _native_multi_head_attention; on meta it runs the unfused ops.
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(64, 4, batch_first=True)

        def forward(self, x):
            return self.attn(x, x, x, need_weights=False)[0]

    model = Block().eval()
    meta = trace_module(Block().eval().to("meta"), (10, 64), 2)
    cpu = trace_module(model, (10, 64), 2, device="cpu")
    assert cpu.unsupported == () and meta.unsupported == ()
    b, l, e, h = 2, 10, 64, 4
    proj = b * l * e * 3 * e + b * l * e * e  # in-projection (q, k, v) + out-projection
    attn = b * h * l * l * (e // h) * 2
    assert meta.totals.macs == cpu.totals.macs == proj + attn
    assert meta.totals.flops == cpu.totals.flops


def test_safe_softmax_is_three_flops_per_element():
    cost = registry.op_cost(registry.lookup("_safe_softmax"), ((2, 3, 5, 7), -1), [(2, 3, 5, 7)])
    assert cost is not None and cost.flops == 3 * 2 * 3 * 5 * 7


@pytest.mark.parametrize("layer, size", [
    (nn.PixelShuffle(2), (8, 4, 4)),
    (nn.PixelUnshuffle(2), (2, 8, 8)),
    (nn.ChannelShuffle(2), (4, 4, 4)),
    (nn.Unfold(3), (2, 8, 8)),
])
def test_rearrangements_are_free_and_supported(layer, size):
    for device in ("meta", "cpu"):
        report = trace_module(nn.Sequential(layer).to(device), size, device=device)
        assert report.unsupported == () and report.totals.flops == 0


def test_fold_adds_overlapping_patches():
    # col2im: every input element is added into the output once.
    fold = nn.Sequential(nn.Fold(output_size=(6, 6), kernel_size=3))
    for device in ("meta", "cpu"):
        report = trace_module(fold.to(device), (2 * 9, 16), device=device)
        assert report.unsupported == ()
        assert report.totals.flops == 2 * 9 * 16


@pytest.mark.parametrize("cls", [nn.LSTM, nn.GRU])
def test_recurrent_layers_have_no_unsupported_ops_and_agree(cls):
    meta = trace_module(_Rnn(cls(16, 32, batch_first=True)).to("meta"), (5, 16), 2)
    cpu = trace_module(_Rnn(cls(16, 32, batch_first=True)), (5, 16), 2, device="cpu")
    assert meta.unsupported == () and cpu.unsupported == ()
    gates = 4 if cls is nn.LSTM else 3
    # each of 2 x 5 steps: input and hidden projections of every gate
    assert meta.totals.macs == 2 * 5 * gates * 32 * (16 + 32)
    assert cpu.totals.macs == meta.totals.macs
    assert cpu.totals.flops == meta.totals.flops


@pytest.mark.parametrize("kwargs", [dict(bias=False), dict(num_layers=2, bidirectional=True)])
def test_lstm_variants_agree_between_meta_and_cpu(kwargs):
    meta = trace_module(_Rnn(nn.LSTM(8, 12, batch_first=True, **kwargs)).to("meta"), (7, 8), 3)
    cpu = trace_module(_Rnn(nn.LSTM(8, 12, batch_first=True, **kwargs)), (7, 8), 3, device="cpu")
    assert cpu.unsupported == () and meta.unsupported == ()
    assert (cpu.totals.macs, cpu.totals.flops) == (meta.totals.macs, meta.totals.flops)


class _Rnn(nn.Module):
    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x):
        return self.rnn(x)[0]


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("backend", [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                                     SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH])
def test_cuda_attention_kernels_count_as_meta(backend):
    model = SDPA(3, 3, 197, 197, 64, 64)
    meta = trace_module(SDPA(3, 3, 197, 197, 64, 64), (1,), 2)
    with sdpa_kernel(backend):
        cuda = trace_module(model, (1,), 2, device="cuda")
    assert cuda.unsupported == ()
    assert cuda.totals.macs == meta.totals.macs


class _BiasedAttention(_TimmAttention):
    """BEiT's pattern: a learned bias table indexed into the attention mask, and a mask
    filled by index assignment (Swin's shifted windows)."""

    def __init__(self):
        super().__init__()
        self.table = nn.Parameter(torch.zeros(7, 4))
        self.register_buffer("index", torch.arange(10 * 10).remainder(7).view(10, 10),
                             persistent=False)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads) \
            .permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.table[self.index].permute(2, 0, 1).unsqueeze(0)
        shift = x.new_zeros(n, n)
        shift[2:5, 0:3] = -100.0  # CPU: fill_; meta and CUDA: copy_ of an expanded number
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=bias + shift)
        return self.proj(y.transpose(1, 2).reshape(b, n, c))


def test_parameter_masks_and_index_assignments_give_the_same_rows_on_meta_and_cpu():
    # The bias table's 28 parameters belong to the attention row on every device (on the
    # CPU they were nobody's), and ``shift[...] = -100`` is one "fill" row everywhere.
    meta = trace_module(_BiasedAttention().to("meta"), (10, 32), 2)
    cpu = trace_module(_BiasedAttention(), (10, 32), 2, device="cpu")
    assert _rows(cpu) == _rows(meta)
    assert cpu.unused_params == meta.unused_params == 0
    fills = [r for r in meta.layers if r.name.endswith(".fill") or r.name == "fill"]
    assert len(fills) == 1


class _ExplicitAttention(_TimmAttention):
    """Swin's explicit attention: ``q * scale`` on a head-split (permuted) view, matmuls."""

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads) \
            .permute(2, 0, 3, 1, 4).unbind(0)
        q = q * 0.125  # the CPU keeps q's permuted layout: the matmul's reshape copies it
        attn = (q @ k.transpose(-2, -1)).softmax(dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


def test_elementwise_results_keep_their_input_layout_on_meta():
    # Meta's shape shortcut gave q * scale a contiguous layout, the CPU a permuted one: the
    # matmul's reshape was a view on meta and a clone + _unsafe_view on the CPU.
    meta = trace_module(_ExplicitAttention().to("meta"), (10, 32), 2)
    cpu = trace_module(_ExplicitAttention(), (10, 32), 2, device="cpu")
    assert _rows(cpu) == _rows(meta)
    assert any(r.type == "clone" for r in meta.layers)
