"""fvcore's multiply-add totals for every zoo model, recorded in ``tests/data/fvcore_macs.json``.

The default run compares cnnscope's MACs with this file (tests/analysis/test_fvcore_registry.py);
``-m slow`` recounts every entry with fvcore and compares it with the file, so the file
cannot drift from what fvcore says. The numbers are fvcore's, never cnnscope's: fvcore
traces the model on real CPU tensors through ``torch.jit`` and counts conv / linear /
matmul as one per multiply-add, biases excluded (cnnscope's MACs convention); its rules
for other ops (batch norm, upsampling, pooling) are left out (``fvcore_mac_operators()``).

Regenerate after adding a zoo model or changing one on purpose::

    .venv/bin/python -m tests.analysis.fvcore_reference    # ~30 CPU s, writes the file
"""

from __future__ import annotations

import json
import logging
import warnings
from importlib.metadata import version
from pathlib import Path

import torch

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "fvcore_macs.json"


class _Uninitialised:
    """A model source whose CPU build allocates zeroed weights without initialising them:
    a count depends on shapes only; zeros keep denormals and NaNs out of the kernels, and
    random initialisation of VGG's 138 M weights alone costs more than its trace."""

    def __init__(self, source):
        self.source, self.name = source, source.name

    def build(self, device: str):
        model = self.source.build("meta").to_empty(device=device)
        with torch.no_grad():
            for tensor in [*model.parameters(), *model.buffers()]:
                tensor.zero_()
        return model


def fvcore_macs(name: str, input_size: tuple[int, ...]) -> int:
    """fvcore's whole-model total of the multiply-add operators (its own ``by_operator``)."""
    from fvcore.nn import FlopCountAnalysis

    from cnnscope.models import resolve
    from cnnscope.ops.registry import fvcore_mac_operators

    logging.getLogger("fvcore").setLevel(logging.ERROR)
    model = _Uninitialised(resolve(name)).build("cpu").eval()
    with warnings.catch_warnings():  # torch.jit's deprecation and tracer warnings
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(model, torch.zeros((1, *input_size)))
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
        by_operator = analysis.tracer_warnings("none").by_operator()
    return sum(n for op, n in by_operator.items() if op in fvcore_mac_operators())


def load() -> dict:
    return json.loads(REFERENCE.read_text())


def main() -> None:
    from cnnscope.zoo import list_models, model_info

    torch.set_num_threads(1)
    models = {}
    for name in list_models():
        size = tuple(model_info(name).input_size)
        models[name] = {"input": list(size), "batch": 1, "fvcore_macs": fvcore_macs(name, size)}
        print(f"{name:28} {models[name]['fvcore_macs']:>16,}", flush=True)
    doc = {"counted_by": f"fvcore {version('fvcore')}, torch {torch.__version__}",
           "operators": "conv, linear, addmm, matmul, bmm, einsum, mm... (cnnscope.ops.registry.fvcore_mac_operators())",
           "models": models}
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
