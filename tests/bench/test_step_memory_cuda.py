"""cnnscope memory's estimate against torch.cuda.max_memory_allocated (GPU only)."""

import pytest
import torch

from cnnscope.api import plan_memory
from cnnscope.benchmark.step_memory import measure_real
from cnnscope.models import resolve

pytestmark = pytest.mark.cuda


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name,batch,opts", [("resnet18", 8, {}), ("resnet50", 8, {}),
                                             ("resnet50", 8, {"dtype": "bf16"}),
                                             ("mobilenet_v2", 16, {"optimizer": "adamw"})])
def test_estimate_within_5_percent_of_max_memory_allocated(name, batch, opts):
    plan = plan_memory(name, batch=batch, **opts)
    measured = measure_real(resolve(name).build("cuda"), plan.input_size, batch, "cuda", **opts)
    assert measured.method.startswith("torch.cuda.max_memory_allocated")
    assert plan.peak_bytes == pytest.approx(measured.allocator_peak_bytes, rel=0.05)
