"""The memory planner on timm transformers against a real CPU training step (slow; needs
timm: run with an environment that has it, e.g. ``/work/venv-ext``).

The reference is the CPU allocator's own events during the second step
(``cnnscope.bench.step_memory.measure_real``), independent of the planner's bookkeeping.
"""

import pytest
import torch

from cnnscope.api import plan_memory
from cnnscope.bench.step_memory import measure_real
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
