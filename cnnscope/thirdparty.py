"""torchvision and timm: importing them safely and calling their builders without weights.

- ``import_package("torchvision", spec)`` imports the package, or raises a one-line
  ``ModelLoadError``: not installed (the ``pip install``), or installed but not working
  with this torch (a version or build mismatch: both versions and the fix are named,
  instead of the 59-line traceback of a torchvision whose compiled ops do not load).
- ``torchvision_kwargs`` gives every torchvision builder ``weights=None`` and, where it
  takes one, ``weights_backbone=None`` (segmentation and detection builders otherwise
  fetch ImageNet backbone weights).
- ``torchvision_input`` is the input the model's published weights use (their crop or
  resize size; 16 frames for video), read from the weights' metadata without downloading.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import re
from typing import Any

import cnnscope.patches as patches
from cnnscope.errors import ModelLoadError

# Arguments that would load weights: cnnscope never does.
TORCHVISION_WEIGHT_ARGS = ("weights", "weights_backbone")


def _dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _built_for(name: str) -> str | None:
    """The torch version a package pins in its metadata (torchvision: ``torch==2.13.0``)."""
    from importlib import metadata

    try:
        requires = metadata.requires(name) or []
    except metadata.PackageNotFoundError:
        return None
    for req in requires:
        m = re.match(r"^torch\s*\(?\s*==\s*([\w.+]+)", req)
        if m:
            return m.group(1)
    return None


def expected_torchvision(torch_version: str) -> str | None:
    """torchvision's minor follows torch's: torch 2.X pairs with torchvision 0.(X+15)."""
    m = re.match(r"^2\.(\d+)", torch_version)
    return f"0.{int(m.group(1)) + 15}" if m else None


def import_package(name: str, spec: str, module: str | None = None) -> Any:
    """Import ``module`` (default ``name``) of package ``name`` for ``spec``, or a one-line error."""
    module = module or name
    import sys

    if name not in sys.modules and importlib.util.find_spec(name) is None:
        raise ModelLoadError(f"{spec} needs {name}, which is not installed", f"pip install {name}")
    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any failure here is an environment problem
        raise mismatch_error(name, spec, exc) from None


def mismatch_error(name: str, spec: str, exc: BaseException) -> ModelLoadError:
    """The one-line message for a package that is installed but does not load with this torch."""
    import torch

    torch_v = torch.__version__
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    versions = [f"torch {torch_v}"]
    for pkg in dict.fromkeys((name, "torchvision")):
        v = _dist_version(pkg)
        if v is not None:
            versions.append(f"{pkg} {v}")
    tv = _dist_version("torchvision")
    built_for = _built_for("torchvision")
    want = expected_torchvision(torch_v)
    if tv is not None and want is not None and not tv.startswith(want + "."):
        hint = (f"torch {torch_v} needs torchvision {want}.x: "
                f"pip install 'torchvision=={want}.*' from the index torch came from")
    elif built_for is not None and built_for != torch_v:
        hint = (f"torchvision {tv} was built for torch {built_for}, not {torch_v}: install "
                f"torch and torchvision from the same index (e.g. both CPU or both CUDA builds)")
    else:
        hint = ("reinstall torch and torchvision as a matching pair from the same index "
                f"(pip install torch=={torch_v.split('+')[0]} 'torchvision=={want or '?'}.*')")
    return ModelLoadError(
        f"{spec}: {name} does not load with this torch ({', '.join(versions)}): "
        f"{type(exc).__name__}: {text}", hint)


def torchvision_kwargs(builder: Any, spec: str, kw: dict[str, Any]) -> dict[str, Any]:
    """The builder's keyword arguments with every weights argument set to None.

    A weights value the user gave other than None is refused (cnnscope never loads
    weights); ``weights_backbone`` is added only for builders that take it.
    """
    for key in TORCHVISION_WEIGHT_ARGS:
        if kw.get(key) not in (None, "None"):
            raise ModelLoadError(f"cnnscope never loads weights ({spec} got {key}={kw[key]!r})",
                                 f"drop the {key} argument")
    out = {k: v for k, v in kw.items() if k not in TORCHVISION_WEIGHT_ARGS}
    try:
        params = inspect.signature(builder).parameters
    except (TypeError, ValueError):
        params = {}
    out["weights"] = None
    if "weights_backbone" in params:
        out["weights_backbone"] = None
    return out


def torchvision_weights(tvm: Any, name: str) -> Any | None:
    """The default weights enum member of a torchvision model, or None."""
    try:
        return tvm.get_model_weights(name).DEFAULT
    except Exception:  # noqa: BLE001 - no weights registered, an older torchvision
        return None


# RAFT's forward takes two frames whose sides are multiples of 8; its weights' metadata
# records no size, so both frames are 520x960 (a /8 size of the Sintel and KITTI scale).
OPTICAL_FLOW_INPUT = ((3, 520, 960), (3, 520, 960))


def torchvision_input(tvm: Any, name: str) -> tuple:
    """The per-sample input the weights' preprocessing gives the model.

    Classification and video: the crop size (video clips: 16 frames, as torchvision's
    video references use); segmentation: the resize size, square. Otherwise 3x224x224.
    """
    w = torchvision_weights(tvm, name)
    size: tuple[int, ...] = (3, 299, 299) if name == "inception_v3" else (3, 224, 224)
    if w is None:
        return size
    try:
        t = w.transforms()
    except Exception:  # noqa: BLE001 - a transform that needs something missing
        return size
    crop = getattr(t, "crop_size", None)
    resize = getattr(t, "resize_size", None)
    kind = type(t).__name__
    if kind == "OpticalFlow":  # RAFT: forward(image1, image2); Sintel's frames, padded to /8
        return OPTICAL_FLOW_INPUT
    side = crop or resize
    if not side:
        return size
    side = list(side)
    hw = (side[0], side[-1]) if len(side) > 1 else (side[0], side[0])
    if kind == "VideoClassification":
        return (3, 16, *hw)
    return (3, *hw)


# ---------------------------------------------------------------------- detection caps

DETECTION_CONVENTIONS = ("caps", "data")
CAPS_NOTE = (
    "detection counted at its caps: every score threshold, small-box filter and NMS keeps "
    "every candidate, so the RPN passes rpn_post_nms_top_n_test proposals per image and the "
    "head keeps detections_per_img boxes (the same count whatever the weights); "
    "--detections data counts what these random weights keep instead")


def _keep_all_nms(boxes, scores, *args, **kwargs):
    """NMS that suppresses nothing: every index, best score first (what NMS returns)."""
    import torch

    return torch.argsort(scores, descending=True)


def _keep_all_boxes(boxes, *args, **kwargs):
    import torch

    return torch.arange(boxes.shape[0], device=boxes.device)


def is_detection(model: Any) -> bool:
    """A torchvision detection model (R-CNN family, RetinaNet, FCOS, SSD)."""
    return type(model).__module__.startswith("torchvision.models.detection")


@contextlib.contextmanager
def detection_caps(model: Any):
    """While inside, ``model`` (a torchvision detection model) keeps every candidate up to
    its configured caps: how many boxes survive no longer depends on the weights.

    Score thresholds become -1 (scores are probabilities: all pass), and torchvision's
    ``batched_nms``, ``nms`` and ``remove_small_boxes`` keep everything; the top-k caps
    (``pre_nms_top_n``/``post_nms_top_n``, ``topk_candidates``, ``detections_per_img``)
    then fix the counts. Everything is put back afterwards.
    """
    saved_attrs = []
    for m in model.modules():
        for attr in ("score_thresh", "box_score_thresh"):
            if isinstance(m.__dict__.get(attr), (int, float)):
                saved_attrs.append((m, attr, m.__dict__[attr]))
                m.__dict__[attr] = -1.0
    try:
        with _KEEP_ALL:
            yield
    finally:
        for m, attr, v in saved_attrs:
            m.__dict__[attr] = v


def _keep_all_swaps() -> list:
    from torchvision.ops import boxes as box_ops

    return [patches.Swap(box_ops, "batched_nms", lambda below: _keep_all_nms),
            patches.Swap(box_ops, "nms", lambda below: _keep_all_nms),
            patches.Swap(box_ops, "remove_small_boxes", lambda below: _keep_all_boxes)]


_KEEP_ALL = patches.scoped("detection-caps", _keep_all_swaps)


def torchvision_module_input(model: Any) -> tuple | None:
    """The input a built torchvision module's default weights use, or None.

    An instance does not say which builder made it; its class's module and its parameter
    count do: the builder of that module whose weights' metadata (``num_params``, no
    download) matches gives the same input as ``torchvision:NAME``. ViTs use their own
    ``image_size``; RAFT gets two frames. No match (a changed head): None.
    """
    cls = type(model)
    if not cls.__module__.startswith("torchvision.models"):
        return None
    if cls.__name__ == "RAFT":
        return OPTICAL_FLOW_INPUT
    if cls.__name__ == "VisionTransformer":
        side = int(getattr(model, "image_size", 224))
        return (3, side, side)
    try:
        import torchvision.models as tvm

        count = sum(p.numel() for p in model.parameters())
        for name in tvm.list_models():
            builder = tvm.get_model_builder(name)
            if builder.__module__ != cls.__module__:
                continue
            if any(w.meta.get("num_params") == count for w in tvm.get_model_weights(name)):
                return torchvision_input(tvm, name)
    except Exception:  # noqa: BLE001 - an older torchvision without the registry API
        pass
    # No weights match (an auxiliary head on or off, another num_classes): the family's.
    if cls.__module__.startswith("torchvision.models.segmentation"):
        return (3, 520, 520)  # every segmentation weights' resize size
    if cls.__name__ in ("Inception3", "QuantizableInception3"):
        return (3, 299, 299)
    return None
