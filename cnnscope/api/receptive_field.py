"""Receptive fields through the API (``cnnscope rf``): ``receptive_fields``.

The walk over the traced records is ``cnnscope.analysis.receptive_field``'s; resolving the
model and tracing it on the meta device happen here.
"""

from __future__ import annotations

from typing import Any

from cnnscope.analysis.receptive_field import ReceptiveFieldReport
from cnnscope.analysis.receptive_field import receptive_fields as fields_of
from cnnscope.api.analyze_model import analyze


def receptive_fields(model: Any, input_size: Any = None,
                     **builder_kwargs: Any) -> ReceptiveFieldReport:
    """Receptive field, effective stride and padding of every layer, in input pixels
    (``cnnscope rf``).

    ``model``: a zoo name, a spec (``file.py:factory``, ``torchvision:NAME``...), a
    ``ModelSource`` or an ``nn.Module``; ``builder_kwargs`` go to its builder.
    ``input_size`` as ``analyze`` takes it (None: the model's own). Multi-branch merges are
    checked for alignment; the summary is the field of the last spatial feature map before
    global pooling, flatten or a fully connected layer.

        >>> from cnnscope.api import receptive_fields
        >>> rf = receptive_fields("vgg16")
        >>> rf.by_name("features.28").receptive_field  # conv5_3  # doctest: +SKIP
        (196, 196)
    """
    # A too-small input is explained by analyze (the first layer that cannot fit it).
    return fields_of(analyze(model, input_size, **builder_kwargs))
