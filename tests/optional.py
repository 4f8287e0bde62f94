"""Optional third-party packages for the slow real-model tests (torchvision, timm)."""

from __future__ import annotations

import warnings


def optional_import(name: str):
    """The module ``name``, or None when it is absent or does not load with this torch
    (the local CPU wheel cannot load torchvision's compiled ops): its tests then skip."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return __import__(name)
    except Exception:  # noqa: BLE001 - absent or not loading with this torch: skip
        return None
