"""One rank of a data-parallel job: what ``cnnscope.benchmark.ddp`` launches on every process.

``run_rank`` joins the process group (gloo on the CPU, NCCL on CUDA), then either times
DDP training steps (``_ddp_sweep``: the single-process step on rank 0, DDP steps with and
without ``no_sync()``, a lone all-reduce of the gradient bytes, and the ring all-reduce
prediction) or runs its share of a sharded sweep (``_shard``); ``gather_object`` brings
every rank's figures to rank 0, which returns the merged ``DdpResult`` (or
``ShardedResult``). See
``cnnscope.benchmark.ddp`` for the whole procedure and the two ways in.
"""

from __future__ import annotations

import math
import os
import socket
from dataclasses import replace
from datetime import timedelta
from typing import Any, Sequence

import torch

import cnnscope.patches as patches
from cnnscope.benchmark import comm_model
from cnnscope.benchmark.ddp_job import DdpJob, finished_mark
from cnnscope.benchmark.records import BenchResult, BenchRow, DdpResult, DdpStats, ShardedResult


def rank_device(settings_device: str) -> torch.device:
    """cuda:LOCAL_RANK for a CUDA job (one GPU per rank), the CPU otherwise."""
    if str(settings_device).startswith("cuda"):
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def run_rank(job: DdpJob, trace: Any, resolve: Any) -> BenchResult | None:
    """What every rank runs (the launcher's entry point, or the CLI under torchrun).

    In a local launch the rank marks in ``job.status_dir`` that its work returned or
    raised: a rank without the mark that did not fail ended its process early, and the
    launcher names it as the one that left first.
    """
    try:
        return _run_rank(job, trace, resolve)
    finally:
        if job.status_dir:
            try:
                with open(finished_mark(job.status_dir, int(os.environ.get("RANK", "0"))), "w"):
                    pass
            except OSError:
                pass


def _run_rank(job: DdpJob, trace: Any, resolve: Any) -> BenchResult | None:
    import torch.distributed as dist

    from cnnscope.benchmark import runner

    device = rank_device(job.settings.device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if device.type == "cpu" and job.threads:
        patches.for_process("rank-threads", torch.set_num_threads, job.threads)
    backend = "nccl" if device.type == "cuda" else "gloo"
    # device_id binds NCCL's communicator to this rank's GPU at once (no guess from the
    # current device, no lazy set-up inside the first timed all-reduce).
    extra = {"device_id": device} if device.type == "cuda" else {}
    dist.init_process_group(backend, timeout=timedelta(seconds=job.options.timeout_s), **extra)
    try:
        settings = replace(job.settings, device=str(device))
        # In this process: the api's resolver (see ddp.run), so the rank builds its own models.
        sources = resolve(job.names, job.kwargs)
        specs = runner.plan_rows(sources, job.batches, job.dtypes, job.modes)
        if job.options.shard:
            return _shard(specs, settings, device, trace)
        return _ddp_sweep(specs, settings, device, backend, job, trace)
    finally:
        dist.destroy_process_group()


def _env_of_rank(device: torch.device, settings: Any) -> dict[str, Any]:
    from cnnscope.benchmark.env import collect_env

    env = collect_env(device, cudnn_benchmark=settings.cudnn_benchmark)
    env["host"] = socket.gethostname()
    return env


def _shard(specs: Sequence[Any], settings: Any, device: torch.device,
           trace: Any) -> ShardedResult | None:
    """Rows i with i % world == rank run on this rank (single-device bench, no DDP);
    rank 0 merges them back into plan order."""
    import torch.distributed as dist

    from cnnscope.benchmark import runner

    rank, world = dist.get_rank(), dist.get_world_size()
    mine = list(specs)[rank::world]
    if device.type == "cpu" and settings.ceiling:
        # This rank's CPU share is not the whole machine's: its ceiling is measured now,
        # with its threads, and kept out of the on-disk cache (which holds whole-machine
        # figures). Seeding the run cache makes run_sweep use it.
        from cnnscope.benchmark import ceiling as ceiling_mod

        for dtype in dict.fromkeys(spec.dtype for spec in mine):
            ceiling_mod.keep_for_this_run(device, dtype, _fresh_ceiling(device, dtype))
        settings = replace(settings, remeasure_ceiling=False)
    local = runner.run_sweep(mine, settings, trace=trace)
    local.env["host"] = socket.gethostname()
    payload = {"rank": rank, "env": local.env, "rows": [r.to_dict() for r in local.rows],
               "ceilings": {k: c.to_dict() for k, c in local.ceilings.items()},
               "interrupted": local.interrupted}
    gathered = _gather(payload)
    if rank != 0:
        return None
    from cnnscope.benchmark.records import MatmulCeiling

    parts = sorted(gathered, key=lambda p: p["rank"])
    rows_by_rank = [[BenchRow.from_dict(r) for r in p["rows"]] for p in parts]
    rows: list[BenchRow] = []
    for i in range(len(specs)):
        r, k = i % world, i // world
        if k < len(rows_by_rank[r]):
            rows.append(rows_by_rank[r][k])
    result = ShardedResult(env=dict(parts[0]["env"]), settings=settings.to_dict(), rows=rows,
                         planned=len(specs), interrupted=any(p["interrupted"] for p in parts))
    result.settings["device"] = str(device)
    for p in parts:
        for dtype, c in p["ceilings"].items():
            result.ceilings.setdefault(dtype, MatmulCeiling.from_dict(c))
    result.env["shard"] = {
        "world_size": world,
        "backend": dist.get_backend(),
        "ranks": [{"rank": p["rank"], "host": p["env"].get("host"), "device": p["env"].get("device"),
                   "device_name": p["env"].get("device_name"),
                   "rows": len(p["rows"])} for p in parts],
    }
    return result


def _fresh_ceiling(device: torch.device, dtype: str) -> Any:
    """The matmul ceiling measured now with this process's threads; never cached."""
    from datetime import datetime, timezone

    from cnnscope.benchmark.ceiling import measure_matmul
    from cnnscope.benchmark.env import device_name
    from cnnscope.benchmark.precision import check_dtype
    from cnnscope.benchmark.records import MatmulCeiling

    check_dtype(dtype, device)
    tflops, n = measure_matmul(device, dtype)
    return MatmulCeiling(device_name=device_name(device), dtype=dtype, tflops=tflops, n=n,
                         measured_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                         torch_version=torch.__version__, cached=False)


def _gather(obj: Any) -> list[Any]:
    """Every rank's ``obj``, on rank 0 (an empty list elsewhere)."""
    import torch.distributed as dist

    world = dist.get_world_size()
    out: list[Any] = [None] * world if dist.get_rank() == 0 else None  # type: ignore[assignment]
    dist.gather_object(obj, out, dst=0)
    return out if dist.get_rank() == 0 else []


def _broadcast(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _all_true(flag: bool, device: torch.device) -> bool:
    import torch.distributed as dist

    t = torch.tensor([1 if flag else 0], dtype=torch.int32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MIN)
    return bool(t.item())


def _max_int(value: int, device: torch.device) -> int:
    import torch.distributed as dist

    t = torch.tensor([int(value)], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def _ddp_sweep(specs: Sequence[Any], settings: Any, device: torch.device, backend: str,
               job: DdpJob, trace: Any) -> DdpResult | None:
    import torch.distributed as dist

    from cnnscope.benchmark import runner

    rank, world = dist.get_rank(), dist.get_world_size()
    env = _env_of_rank(device, settings) if rank == 0 else {}
    if rank == 0:
        env["ddp"] = {"world_size": world, "backend": backend,
                      "bucket_cap_mb": job.options.bucket_cap_mb, "threads_per_rank":
                      torch.get_num_threads() if device.type == "cpu" else None,
                      "usable_cores": len(os.sched_getaffinity(0))
                      if device.type == "cpu" and hasattr(os, "sched_getaffinity") else None}
    rows: list[BenchRow] = []
    ceilings: dict[str, Any] = {}
    for spec in specs:
        ceiling = None
        if rank == 0 and settings.ceiling:
            ceiling = ceilings.get(spec.dtype)
            if ceiling is None and device.type == "cpu":
                # With its share of the threads, not the cached whole-machine figure.
                ceiling = ceilings[spec.dtype] = _fresh_ceiling(device, spec.dtype)
            elif ceiling is None:
                ceiling = runner.sweep_ceiling(device, spec.dtype, settings, env, ceilings)
        row = _ddp_row(spec, settings, device, backend, job, ceiling, trace)
        if rank == 0:
            rows.append(row)
    if rank != 0:
        return None
    return DdpResult(env=env, settings={**settings.to_dict(), "device": str(device)},
                     rows=tuple(rows), ceilings=ceilings, planned=len(specs))


def _ddp_row(spec: Any, settings: Any, device: torch.device, backend: str, job: DdpJob,
             ceiling: Any, trace: Any) -> BenchRow | None:
    """One DDP row; every rank calls it, rank 0 returns the row."""
    import torch.distributed as dist

    from cnnscope.benchmark import runner
    from cnnscope.trace.sizes import DEFAULT_INPUT

    rank, world = dist.get_rank(), dist.get_world_size()
    single: BenchRow | None = None
    if rank == 0:  # the other ranks wait in the broadcast, idle
        single = runner.bench_row(spec.source, spec.batch, spec.dtype, "train", settings,
                                  trace=trace)
    single = _broadcast(single)
    if not single.ok:  # the model cannot train at this batch: no DDP run either
        return single if rank == 0 else None

    size = tuple(settings.input_size or spec.source.input_size or DEFAULT_INPUT)
    with runner.device_scope(device, settings.cudnn_benchmark), \
            runner.fp32_math(device, spec.dtype):
        mine = _measure_ddp(spec, size, settings, device, job, trace)
    runner.free_memory(device, failed=False)
    parts = _gather(mine)
    if rank != 0:
        return None
    return _assemble(spec, size, settings, device, backend, job, single, parts, ceiling, world)


def _measure_ddp(spec: Any, size: tuple[int, ...], settings: Any, device: torch.device,
                 job: DdpJob, trace: Any) -> dict[str, Any]:
    """This rank's DDP step, no_sync step and lone all-reduce timings."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from cnnscope.benchmark import runner
    from cnnscope.benchmark.stats import settled, summarize
    from cnnscope.benchmark.timing import phase_times, timer_for

    report = trace(spec.source, size, spec.batch, train=True)
    torch.manual_seed(settings.seed)
    model = spec.source.build(device)
    model.train(True)
    x = torch.randn((spec.batch, *size), device=device)
    if settings.channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    ddp_model = DDP(model, device_ids=[device.index] if device.type == "cuda" else None,
                    bucket_cap_mb=job.options.bucket_cap_mb)
    work = runner.Workload(ddp_model, x, report, spec.dtype, True, settings, device)
    timer = timer_for(device)

    def step(sync: bool = True) -> list[Any]:
        if sync:
            return work.step(timer)
        with ddp_model.no_sync():
            return work.step(timer)

    def step_ms() -> float:
        marks = step()
        timer.sync()
        return timer.elapsed_ms(marks[0], marks[-1])

    # Warm-up: until every rank has settled (the ranks must run the same steps).
    rule = settings.settle_rule
    samples: list[float] = []
    settled_all: bool | None = None
    if rule.fixed:
        for _ in range(rule.min_iters):
            samples.append(step_ms())
    else:
        while True:
            samples.append(step_ms())
            n = len(samples)
            here = n >= rule.min_iters and settled(samples, rule.window, rule.tolerance)
            if _all_true(here, device):
                settled_all = True
                break
            if n >= rule.max_iters:
                settled_all = False
                break
    for _ in range(2):  # no_sync's first steps, untimed
        step(sync=False)
    timer.sync()
    if settings.iters is not None:
        n_iters = settings.iters
    else:
        recent = sorted(samples[-3:]) if samples else [step_ms()]
        est = recent[len(recent) // 2]
        wanted = math.ceil(settings.min_time * 1e3 / est) if est > 0 else runner.MAX_SAMPLES
        n_iters = _max_int(min(runner.MAX_SAMPLES, max(settings.min_samples, wanted)), device)

    memory = runner.PeakMemory(device)
    memory.reset()
    sync_marks, nosync_marks = [], []
    for _ in range(n_iters):  # alternate, so both see the same conditions
        sync_marks.append(step(sync=True))
        nosync_marks.append(step(sync=False))
    timer.sync()
    peak = memory.read()
    times = [phase_times(timer, m, work.phases) for m in sync_marks]
    total = summarize([t["total"] for t in times])
    fwd = summarize([t["fwd"] for t in times])
    bwd = summarize([t["bwd"] for t in times])
    opt = summarize([t["opt"] for t in times])
    nosync = summarize([timer.elapsed_ms(m[0], m[-1]) for m in nosync_marks])
    span_ms = timer.elapsed_ms(sync_marks[0][0], sync_marks[-1][-1])

    # A lone all-reduce of the gradient bytes: the bandwidth this job's links reach.
    flat = torch.zeros(max(1, trainable), dtype=torch.float32, device=device)
    for _ in range(2):
        dist.all_reduce(flat)
    timer.sync()
    ar_marks = []
    for _ in range(max(5, min(n_iters, 20))):
        a = timer.mark()
        dist.all_reduce(flat)
        ar_marks.append((a, timer.mark()))
    timer.sync()
    allreduce = summarize([timer.elapsed_ms(a, b) for a, b in ar_marks])
    del flat

    bucket_bytes: tuple[int, ...] = ()
    try:  # DDP's own record of the buckets it built (bytes each, after its rebuild)
        sizes = ddp_model._get_ddp_logging_data().get("rebuilt_bucket_sizes")
        bucket_bytes = tuple(int(x) for x in str(sizes).split(",") if x.strip())
    except Exception:  # noqa: BLE001 - a private accessor: the sizes are optional
        bucket_bytes = ()
    return dict(
        rank=dist.get_rank(), trainable=trainable, macs=report.totals.macs,
        backward_macs=report.totals.backward_macs, samples=total.n,
        total=total, fwd=fwd, bwd=bwd, opt=opt, nosync=nosync, allreduce=allreduce,
        span_ms=span_ms, peak=peak, peak_kind=memory.kind, warmup_iters=len(samples),
        warmup_settled=settled_all, bucket_bytes=bucket_bytes,
        unsupported=tuple(op for op, _ in report.unsupported),
    )


def _assemble(spec: Any, size: tuple[int, ...], settings: Any, device: torch.device, backend: str,
              job: DdpJob, single: BenchRow, parts: list[dict[str, Any]], ceiling: Any,
              world: int) -> BenchRow:
    """Rank 0: the row of the slowest rank, with the DDP figures and the prediction."""
    from cnnscope.benchmark.env import device_name

    parts = sorted(parts, key=lambda p: p["rank"])
    slow = max(parts, key=lambda p: p["total"].median)
    total, macs = slow["total"], slow["macs"]
    nbytes = comm_model.allreduce_bytes(slow["trainable"], spec.dtype)
    allreduce_ms = max(p["allreduce"].median for p in parts)
    bus = comm_model.bus_gbps(nbytes, world, allreduce_ms * 1e-3)
    link = job.options.link_gbps or bus
    buckets = len(slow["bucket_bytes"]) or None
    predictions: tuple = ()
    if link and single.median_ms:
        sizes = sorted({world, *job.options.predict_world})
        predictions = tuple(comm_model.predict(
            nbytes, single.median_ms, single.bwd_median_ms, sizes, link,
            latency_us=job.options.latency_us,
            buckets=buckets or comm_model.bucket_count(nbytes, job.options.bucket_cap_mb)))
    stats = DdpStats(
        world_size=world, backend=backend, bucket_cap_mb=job.options.bucket_cap_mb, buckets=buckets,
        bucket_bytes=slow["bucket_bytes"],
        trainable_params=slow["trainable"], allreduce_bytes=nbytes,
        single_median_ms=single.median_ms, single_iqr_ms=single.iqr_ms,
        single_bwd_ms=single.bwd_median_ms, nosync_median_ms=slow["nosync"].median,
        exposed_comm_ms=total.median - slow["nosync"].median,
        scaling_efficiency=single.median_ms / total.median if single.median_ms else None,
        allreduce_ms=allreduce_ms, bus_gbps=bus,
        rank_median_ms=tuple(p["total"].median for p in parts),
        threads_per_rank=torch.get_num_threads() if device.type == "cpu" else None,
        predictions=predictions,
    )
    notes = []
    if slow["warmup_settled"] is False:
        notes.append(f"warm-up did not settle on every rank within {slow['warmup_iters']} iterations")
    if slow["unsupported"]:
        notes.append(f"ops without a cost formula ({', '.join(slow['unsupported'])}): "
                     "MACs and TFLOP/s are a lower bound")
    if not job.options.link_gbps and bus:
        notes.append(f"prediction at the bus bandwidth measured in this job ({bus:.3g} Gbit/s); "
                     "--link-gbps sets another")
    # One basis with the single-device rows (runner._measure): the counted backward MACs,
    # 2 x forward only where the backward could not be counted.
    bwd_macs = slow.get("backward_macs")
    if bwd_macs is None:
        bwd_macs = 2 * macs
        notes.append("backward not counted on this model: bwd TFLOP/s use 2 x forward MACs")
    achieved = 2 * (macs + bwd_macs) / (total.median * 1e-3) / 1e12
    row = BenchRow(
        model=spec.source.name, device=f"{device.type} x{world}", device_name=device_name(device),
        batch=spec.batch, dtype=spec.dtype, mode="train", input_size=size, status="ok",
        samples=total.n, median_ms=total.median, p10_ms=total.p10, p25_ms=total.p25,
        p75_ms=total.p75, p90_ms=total.p90, mean_ms=total.mean,
        fwd_median_ms=slow["fwd"].median, fwd_iqr_ms=slow["fwd"].iqr,
        bwd_median_ms=slow["bwd"].median, bwd_iqr_ms=slow["bwd"].iqr,
        opt_median_ms=slow["opt"].median,
        throughput=world * spec.batch / (total.median * 1e-3),
        throughput_sustained=(world * spec.batch * total.n / (slow["span_ms"] * 1e-3)
                              if slow["span_ms"] > 0 else None),
        peak_memory_bytes=slow["peak"], peak_memory_kind=slow["peak_kind"], macs=macs,
        achieved_tflops=achieved, fwd_tflops=2 * macs / (slow["fwd"].median * 1e-3) / 1e12,
        bwd_tflops=2 * bwd_macs / (slow["bwd"].median * 1e-3) / 1e12, backward_macs=bwd_macs,
        ceiling_tflops=ceiling.tflops if ceiling else None,
        ceiling_fraction=achieved / ceiling.tflops if ceiling and ceiling.tflops else None,
        warmup_iters=slow["warmup_iters"], warmup_settled=slow["warmup_settled"],
        channels_last=settings.channels_last, notes=tuple(notes), ddp=stats,
    )
    return row


__all__ = ["rank_device", "run_rank"]
