"""A benchmark sweep through the API (``cnnscope bench``): ``bench_sweep``.

Models x batches x dtypes x modes, on one device or spread over DDP ranks. Here the
names are resolved and every input checked on the meta device before anything is timed;
``cnnscope.benchmark`` then times the sources it is given and never resolves a name.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from cnnscope.api.analyze_model import resolve_all
from cnnscope.api.timing import check_inputs, run_ddp, run_sweep
from cnnscope.errors import InvalidOptionError

# One model per main family for ``cnnscope bench`` with no model; only the registered ones
# run. A family not listed here contributes its first ImageNet model.
DEFAULT_MODELS = (
    "alexnet", "vgg16", "googlenet", "inception_v3", "resnet50", "resnext50_32x4d",
    "wide_resnet50_2", "densenet121", "mobilenet_v2", "xception", "se_resnet50",
    "hrnetv2_w18",
)


def default_models() -> list[str]:
    """One model per main family of the zoo (only registered models)."""
    from cnnscope.zoo import all_models, list_models, model_info

    registered = set(list_models())
    chosen = [n for n in DEFAULT_MODELS if n in registered]
    families = {model_info(n).family for n in chosen}
    for info in all_models():
        if info.family not in families and info.dataset == "ImageNet":
            chosen.append(info.name)
            families.add(info.family)
    return chosen


def sweep_models(models: Sequence[str] | None, all_models: bool = False) -> list[str]:
    """The names a sweep runs: ``models``, every zoo model (``all_models``) or the default
    one per family."""
    from cnnscope.zoo import list_models

    if all_models and models:
        raise InvalidOptionError("--all with model names", "give one or the other")
    return list_models() if all_models else list(models) if models else default_models()


def bench_sweep(
    models: Sequence[str] | None = None,
    *,
    settings: Any,
    batches: Sequence[int] = (1,),
    dtypes: Sequence[str] = ("fp32",),
    modes: Sequence[str] = ("infer",),
    model_kwargs: Sequence[dict[str, Any]] | None = None,
    all_models: bool = False,
    ddp: Any = None,
    on_plan: Callable[[int], None] | None = None,
    on_start: Callable[[int, Any], None] | None = None,
    on_done: Callable[[int, Any], None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
):
    """Time every (model, dtype, mode, batch) row (``cnnscope bench``): a ``BenchResult``.

    ``models``: zoo names or specs (None: one model per main family, or every zoo model
    with ``all_models``); ``model_kwargs``: one dict of builder arguments per model.
    ``settings`` is a ``cnnscope.benchmark.BenchSettings`` (device, iterations, ...). Unknown
    names, and inputs a model cannot take, fail before anything is timed.

    ``ddp``, a ``cnnscope.benchmark.ddp.DdpOptions``: DDP training steps on local ranks (or
    the torchrun job's), or with ``shard`` the rows spread over the ranks; returns None on
    a torchrun rank other than 0 (rank 0 holds the merged result). Otherwise the rows run
    here: ``on_plan(n)`` is told the number of rows first, ``on_start(i, spec)`` and
    ``on_done(i, row)`` frame each row, and ``on_progress(result)`` gets the result so far.

        >>> from cnnscope.api import bench_sweep
        >>> from cnnscope.benchmark import BenchSettings
        >>> result = bench_sweep(["lenet5"], batches=[1, 8],
        ...                      settings=BenchSettings(device="cpu", iters=5, ceiling=False))
        >>> [(r.batch, r.status) for r in result.rows]  # doctest: +SKIP
        [(1, 'ok'), (8, 'ok')]
    """
    from cnnscope.benchmark import runner

    names = sweep_models(models, all_models)
    sources = resolve_all(names, model_kwargs)  # unknown names fail before anything runs
    check_inputs(sources, settings.input_size)  # ... and inputs a model cannot take
    if ddp is not None:
        from cnnscope.benchmark import ddp as ddp_mod

        ddp_mod.check_options(ddp, modes, settings, settings.check())
        kwargs = tuple(model_kwargs) if model_kwargs is not None else tuple({} for _ in names)
        return run_ddp(ddp_mod.DdpJob(
            names=tuple(names), kwargs=kwargs, batches=tuple(batches), dtypes=tuple(dtypes),
            modes=tuple(modes), settings=settings, options=ddp))
    specs = runner.plan_rows(sources, batches, dtypes, modes)
    if on_plan:
        on_plan(len(specs))
    return run_sweep(specs, settings, on_start=on_start, on_done=on_done, on_progress=on_progress)
