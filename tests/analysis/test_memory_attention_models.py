"""The memory planner on timm transformers against a real CPU training step (slow; needs
timm: run with an environment that has it, e.g. ``/work/venv-ext``).

The reference is the CPU allocator's own events during the second step
(``cnnscope.benchmark.step_memory.measure_real``), independent of the planner's bookkeeping.
"""

import pytest
import torch

from cnnscope.api import plan_memory
from cnnscope.benchmark.step_memory import measure_real
from cnnscope.models import resolve

pytestmark = pytest.mark.slow

# (model, batches, options, the kernels PyTorch runs on the CPU). timm's Swin computes
# its attention itself (softmax of q @ k^T, its fused path is experimental and off), so
# no kernel is chosen there: the plan must still hold.
CASES = [
    ("timm:vit_tiny_patch16_224", (2, 8), {}, "flash"),
    ("timm:deit_tiny_patch16_224", (2, 4), {"optimizer": "adam"}, "flash"),
    ("timm:swin_tiny_patch4_window7_224", (1, 2), {}, None),
    ("timm:eva02_tiny_patch14_224", (1, 2), {}, "flash"),
]


@pytest.mark.parametrize("name,batch,opts,kernel",
                         [(n, b, o, k) for n, bs, o, k in CASES for b in bs],
                         ids=lambda v: v if isinstance(v, (str, int)) else None)
def test_attention_model_within_5_percent_of_a_cpu_step(name, batch, opts, kernel):
    pytest.importorskip("timm")
    plan = plan_memory(name, None, batch, **opts)
    assert [k for k, _ in plan.attention] == ([kernel] if kernel else [])
    torch.manual_seed(0)
    measured = measure_real(resolve(name).build("cpu"), plan.input_size, batch, "cpu", **opts)
    assert plan.peak_bytes == pytest.approx(measured.allocator_peak_bytes, rel=0.05)


def test_swin_with_fused_attention_plans_the_math_kernel_the_cpu_runs():
    # With timm's experimental fused path on (TIMM_FUSED_ATTN=2, read when timm is
    # imported: a fresh process), Swin calls F.scaled_dot_product_attention with its
    # relative position bias as the mask. That mask requires grad, which the CPU flash
    # kernel refuses: PyTorch runs the math path, and so must the plan.
    pytest.importorskip("timm")
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, torch; from cnnscope.api import plan_memory; "
        "from cnnscope.benchmark.step_memory import measure_real; from cnnscope.models import resolve; "
        "n = 'timm:swin_tiny_patch4_window7_224'; p = plan_memory(n, None, 1); "
        "torch.manual_seed(0); m = measure_real(resolve(n).build('cpu'), p.input_size, 1, 'cpu'); "
        "print(json.dumps([p.attention, p.peak_bytes, m.allocator_peak_bytes]))")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, TIMM_FUSED_ATTN="2"),
                         capture_output=True, text=True, check=True).stdout
    attention, plan, allocator = json.loads(out.strip().splitlines()[-1])
    assert attention == [["math", 12]]
    assert plan == pytest.approx(allocator, rel=0.05)
