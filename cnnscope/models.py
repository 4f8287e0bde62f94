"""Turning what the user typed into a model: the one place names are resolved.

A spec is a zoo name (``resnet50``). Other spec forms (``file.py:factory``,
``package.module:factory``, ``torchvision:resnet50``) resolve here too, so every
command accepts them the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from cnnscope.zoo import model_info


@dataclass(frozen=True)
class ModelSource:
    """A buildable model: its display name, default input and builder."""

    name: str
    input_size: tuple[int, int, int] | None  # None when the source does not say
    builder: Callable[..., nn.Module]
    kwargs: tuple[tuple[str, Any], ...] = ()

    def build(self, device: torch.device | str = "meta") -> nn.Module:
        """Instantiate on ``device`` (meta: no memory, no initialisation arithmetic)."""
        with torch.device(device):
            return self.builder(**dict(self.kwargs))


def resolve(spec: str, **kwargs: Any) -> ModelSource:
    """Resolve a model spec; unknown names raise ``UnknownModelError`` with suggestions."""
    info = model_info(spec)
    return ModelSource(
        name=info.name,
        input_size=info.input_size,
        builder=info.factory,
        kwargs=tuple(sorted(kwargs.items())),
    )
