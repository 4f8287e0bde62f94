"""Losses: not layers of a model (never counted), but the memory planner's autocast needs
to know what torch.autocast does with them: they run in float32."""

from __future__ import annotations

import torch.nn.functional as F

from cnnscope.ops.entry import entry

ENTRIES = (
    entry("cross_entropy_loss", autocast="fp32", torch_functions=(F.cross_entropy,)),
    entry(("nll_loss", "nll_loss_forward", "nll_loss_nd"), autocast="fp32",
          torch_functions=(F.nll_loss,)),
    entry("mse_loss", autocast="fp32", torch_functions=(F.mse_loss,)),
    entry("binary_cross_entropy_with_logits", autocast="fp32",
          torch_functions=(F.binary_cross_entropy_with_logits,)),
)
