"""Which attention kernel the memory planner plans, and the CPU kernel's scratch.

The CPU rules are checked against PyTorch's own dispatcher (``torch._fused_sdp_choice``
on real CPU tensors: 1 is flash, 0 is math). The CUDA rules cannot be asked without a
GPU: their cases below are the conditions of ``cuda/sdp_utils.cpp`` written out, and
the ``cuda`` test compares them with the dispatcher where a GPU is present.
"""

import pytest
import torch

from cnnscope.trace.attention_kernels import Call, Target, choose, cpu_flash_workspace, why_not

F32 = 4


def t(*shape, dtype=torch.float32, grad=False):
    x = torch.zeros(shape, dtype=dtype)
    return x.requires_grad_() if grad else x


def q4(b=2, h=3, n=16, e=8, **kw):
    return t(b, h, n, e, **kw)


CPU_CASES = {
    "plain": dict(query=q4(), key=q4(), value=q4()),
    "dropout": dict(query=q4(), key=q4(), value=q4(), dropout_p=0.1),
    "value head dim differs": dict(query=q4(), key=q4(), value=q4(e=4)),
    "3-D": dict(query=t(3, 16, 8), key=t(3, 16, 8), value=t(3, 16, 8)),
    "5-D": dict(query=t(1, 2, 3, 16, 8), key=t(1, 2, 3, 16, 8), value=t(1, 2, 3, 16, 8)),
    "last dim strided": dict(query=q4(e=8).transpose(-1, -2).contiguous().transpose(-1, -2)
                             [..., :8, :], key=q4(n=8), value=q4(n=8)),
    "2-D float mask": dict(query=q4(), key=q4(), value=q4(), attn_mask=t(16, 16)),
    "2-D bool mask": dict(query=q4(), key=q4(), value=q4(),
                          attn_mask=torch.ones(16, 16, dtype=torch.bool)),
    "3-D mask": dict(query=q4(), key=q4(), value=q4(), attn_mask=t(3, 16, 16)),
    "4-D mask per batch and head": dict(query=q4(), key=q4(), value=q4(), attn_mask=t(2, 3, 16, 16)),
    "mask that requires grad": dict(query=q4(), key=q4(), value=q4(), attn_mask=t(16, 16, grad=True)),
    "grouped heads": dict(query=q4(h=4), key=q4(h=2), value=q4(h=2), enable_gqa=True),
    "heads differ without gqa": dict(query=q4(h=4), key=q4(h=2), value=q4(h=2)),
    "bf16": dict(query=q4(dtype=torch.bfloat16), key=q4(dtype=torch.bfloat16),
                 value=q4(dtype=torch.bfloat16)),
    "float64": dict(query=q4(dtype=torch.float64), key=q4(dtype=torch.float64),
                    value=q4(dtype=torch.float64)),
    "causal": dict(query=q4(), key=q4(), value=q4(), is_causal=True),
    "shorter keys": dict(query=q4(), key=q4(n=5), value=q4(n=5)),
    "broadcast batch": dict(query=q4(), key=q4(b=1), value=q4(b=1)),
    "requires grad": dict(query=q4(grad=True), key=q4(grad=True), value=q4(grad=True)),
}


@pytest.mark.parametrize("case", sorted(CPU_CASES))
def test_cpu_choice_is_the_dispatchers(case):
    kw = CPU_CASES[case]
    expected = torch._fused_sdp_choice(kw["query"], kw["key"], kw["value"],
                                       attn_mask=kw.get("attn_mask"),
                                       dropout_p=kw.get("dropout_p", 0.0),
                                       is_causal=kw.get("is_causal", False),
                                       enable_gqa=kw.get("enable_gqa", False))
    call = Call(kw["query"], kw["key"], kw["value"], kw.get("attn_mask"),
                kw.get("dropout_p", 0.0), kw.get("is_causal", False), kw.get("enable_gqa", False))
    assert choose(call, Target("cpu")) == {0: "math", 1: "flash"}[expected]


def cuda_call(dtype=torch.bfloat16, e=64, mask=False, n=197):
    q = t(2, 3, n, e, dtype=dtype, grad=True)
    return Call(q, q, q, t(n, n, dtype=dtype) if mask else None)


@pytest.mark.parametrize("call,arch,kernel", [
    # cuDNN comes first on sm_90/sm_100 for fp16/bf16 with head dims up to 128
    (cuda_call(), (9, 0), "cudnn"),
    (cuda_call(e=256), (9, 0), "flash"),  # over cuDNN's 128, within flash's 256
    (cuda_call(), (8, 0), "flash"),  # A100: no cuDNN priority
    (cuda_call(dtype=torch.float16), (8, 6), "flash"),
    (cuda_call(e=256), (8, 6), "efficient"),  # training with head dim > 192 on sm_86
    (cuda_call(dtype=torch.float32), (8, 0), "efficient"),  # flash takes fp16/bf16 only
    (cuda_call(dtype=torch.float32, e=6), (8, 0), "math"),  # 6 floats: not 128-bit rows
    (cuda_call(mask=True), (8, 0), "efficient"),  # flash takes no mask
    (cuda_call(dtype=torch.float16), (7, 5), "efficient"),  # T4: no flash
    (cuda_call(dtype=torch.bfloat16), (7, 5), "math"),  # bf16 needs sm_80
])
def test_cuda_choice_follows_the_written_rules(call, arch, kernel):
    assert choose(call, Target("cuda", arch)) == kernel


def test_a_forced_kernel_that_cannot_run_says_why():
    assert why_not("efficient", cuda_call(), Target("cpu")) == "efficient attention runs only on CUDA"
    assert why_not("flash", cuda_call(mask=True), Target("cuda", (8, 0))) == "flash attention takes no mask"
    assert why_not("math", cuda_call(), Target("cpu")) is None


@pytest.mark.cuda
def test_cuda_rules_agree_with_the_dispatcher_on_this_gpu():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    arch = torch.cuda.get_device_capability()
    codes = {0: "math", 1: "flash", 2: "efficient", 3: "cudnn"}
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        for e in (6, 64, 160, 256):
            q = torch.zeros(2, 3, 197, e, dtype=dtype, device="cuda", requires_grad=True)
            call = Call(q, q, q)
            assert choose(call, Target("cuda", arch)) == codes[torch._fused_sdp_choice(q, q, q)]


@pytest.mark.parametrize("n,q_split", [(100, 32), (256, 64), (800, 256)])
def test_cpu_flash_scratch_per_thread(n, q_split):
    # FlashAttentionKernel.cpp: blocks of q_split queries (32 below 192 queries, 64 below
    # 768, then 256) against up to 512 keys; forward keeps per thread a score block, its
    # row max and row sum and an output block, backward a score block and its gradient.
    q = torch.empty(2, 3, n, 16, device="meta")
    kv = min(512, n)
    forward = cpu_flash_workspace(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu.default,
                                  (q, q, q), {}, threads=3)
    assert forward == 3 * (q_split * kv + q_split + q_split + q_split * 16) * F32
    backward = cpu_flash_workspace(torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward.default,
                                   (q, q, q, q), {}, threads=3)
    assert backward == 3 * (2 * q_split * kv) * F32
    assert cpu_flash_workspace(torch.ops.aten.mm.default, (q, q), {}, threads=3) == 0
