"""The on-paper data-parallel model (no torch, no processes): gradient bytes, DDP's bucket
count, ring all-reduce time and the weak-scaling prediction, and the DDP renderers.

Expected values are the arithmetic of the formulas as published (Patarasuk & Yuan 2009:
2(p-1)/p x S / B; nccl-tests' bus bandwidth), written out here.
"""

import csv
import io
import json

import pytest

from cnnscope.benchmark import comm_model as cm
from cnnscope.benchmark.records import BenchResult, BenchRow, DdpResult, DdpStats

MiB = 1024 * 1024


def test_gradient_bytes_are_trainable_parameters_times_four():
    # resnet50 has 25,557,032 parameters (torchvision's published num_params), all trainable.
    assert cm.allreduce_bytes(25_557_032, "fp32") == 25_557_032 * 4
    # autocast keeps float32 weights, so bf16/fp16 rows reduce float32 gradients too.
    assert cm.allreduce_bytes(25_557_032, "bf16") == 25_557_032 * 4
    assert cm.allreduce_bytes(25_557_032, "fp16") == 25_557_032 * 4
    with pytest.raises(ValueError):
        cm.allreduce_bytes(-1)


def test_bucket_count_follows_ddps_default_and_explicit_caps():
    # Default: a 1 MiB first bucket, then 25 MiB buckets.
    assert cm.bucket_count(0) == 0
    assert cm.bucket_count(MiB) == 1
    assert cm.bucket_count(MiB + 1) == 2
    assert cm.bucket_count(MiB + 25 * MiB) == 2
    assert cm.bucket_count(MiB + 25 * MiB + 1) == 3
    # resnet50's 102,228,128 gradient bytes: 1 MiB, then ceil((S - 1 MiB) / 25 MiB) = 4 more.
    assert cm.bucket_count(25_557_032 * 4) == 1 + 4
    # An explicit size is used for every bucket, the first included.
    assert cm.bucket_count(25 * MiB, 10) == 3
    assert cm.bucket_count(10 * MiB, 10) == 1


def test_ring_allreduce_time_is_the_published_formula():
    S = 100_000_000  # bytes
    B = 100e9 / 8  # 100 Gbit/s in bytes/s
    assert cm.ring_allreduce_s(S, 2, 100) == pytest.approx(2 * (2 - 1) / 2 * S / B)
    assert cm.ring_allreduce_s(S, 8, 100) == pytest.approx(2 * (8 - 1) / 8 * S / B)
    assert cm.ring_allreduce_s(S, 64, 100) == pytest.approx(2 * (64 - 1) / 64 * S / B)
    # The latency term: 2(p-1) steps per all-reduce, one all-reduce per bucket.
    assert cm.ring_allreduce_s(S, 8, 100, latency_us=10, buckets=5) == pytest.approx(
        2 * 7 / 8 * S / B + 2 * 7 * 10e-6 * 5)
    assert cm.ring_allreduce_s(S, 1, 100) == 0.0  # nothing to reduce with one rank
    with pytest.raises(ValueError):
        cm.ring_allreduce_s(S, 0, 100)
    with pytest.raises(ValueError):
        cm.ring_allreduce_s(S, 2, 0)


def test_bus_bandwidth_is_the_inverse_of_the_bandwidth_term():
    S, p, t = 240_000, 2, 0.25e-3
    assert cm.bus_gbps(S, p, t) == pytest.approx(2 * (p - 1) / p * S / t * 8 / 1e9)
    # Predicting with the measured bus bandwidth gives the measured time back.
    assert cm.ring_allreduce_s(S, p, cm.bus_gbps(S, p, t)) == pytest.approx(t)
    assert cm.bus_gbps(S, 1, t) is None and cm.bus_gbps(S, 2, 0) is None


def test_prediction_bounds_overlap_between_none_and_the_whole_backward():
    S, t1, bwd = 102_228_128, 300.0, 180.0
    (p8,) = cm.predict(S, t1, bwd, [8], link_gbps=10)
    ring_ms = 2 * 7 / 8 * S / (10e9 / 8) * 1e3  # 143.1 ms
    assert p8.allreduce_ms == pytest.approx(ring_ms)
    assert p8.step_ms_no_overlap == pytest.approx(t1 + ring_ms)
    assert p8.step_ms_full_overlap == pytest.approx(t1)  # 143 ms hides inside 180 ms
    assert p8.efficiency_no_overlap == pytest.approx(t1 / (t1 + ring_ms))
    assert p8.efficiency_full_overlap == pytest.approx(1.0)
    (slow,) = cm.predict(S, t1, bwd, [64], link_gbps=1)
    ring_ms = 2 * 63 / 64 * S / (1e9 / 8) * 1e3
    assert slow.step_ms_full_overlap == pytest.approx(t1 + ring_ms - bwd)
    assert slow.efficiency_full_overlap == pytest.approx(t1 / (t1 + ring_ms - bwd))


def _ddp_row() -> BenchRow:
    stats = DdpStats(
        world_size=2, backend="gloo", bucket_cap_mb=None, buckets=1, trainable_params=60_000,
        allreduce_bytes=60_000 * 4, single_median_ms=8.0, single_iqr_ms=0.5, single_bwd_ms=5.0,
        nosync_median_ms=9.0, exposed_comm_ms=1.0, scaling_efficiency=0.8, allreduce_ms=0.3,
        bus_gbps=cm.bus_gbps(240_000, 2, 0.3e-3), bucket_bytes=(240_000,),
        rank_median_ms=(10.0, 9.5), threads_per_rank=1,
        predictions=tuple(cm.predict(240_000, 8.0, 5.0, [2, 8, 64], 6.4)))
    return BenchRow(model="lenet5", device="cpu x2", device_name="CPU", batch=4, dtype="fp32",
                    mode="train", input_size=(1, 32, 32), samples=5, median_ms=10.0, p25_ms=9.8,
                    p75_ms=10.4, throughput=2 * 4 / 10e-3, ddp=stats)


def _result() -> DdpResult:
    return DdpResult(env={"device_name": "CPU", "device": "cpu", "torch": "x",
                            "ddp": {"world_size": 2, "backend": "gloo", "bucket_cap_mb": None,
                                    "threads_per_rank": 1}},
                     settings={}, rows=[_ddp_row()], planned=1)


def test_ddp_rows_round_trip_and_render_in_every_format():
    from rich.console import Console

    from cnnscope.report.render import render_table, render_text

    result = _result()
    back = BenchResult.from_dict(json.loads(render_text(result, "json")))
    assert back.rows[0] == result.rows[0]
    assert type(back) is DdpResult and back == result  # read back as what it is

    con = Console(record=True, width=160)
    render_table(result, con)
    text = con.export_text()
    for word in ("exposed ms", "single ms", "no_sync ms", "eff.", "ring ms", "backend gloo",
                 "2(p-1)/p", "bucket size DDP default"):
        assert word in text, word
    assert "80.0%" in text  # scaling efficiency 0.8

    rows = list(csv.DictReader(io.StringIO(render_text(result, "csv"))))
    assert rows[0]["allreduce_bytes"] == str(60_000 * 4)  # exact integers in files
    assert rows[0]["world_size"] == "2" and rows[0]["backend"] == "gloo"
    assert rows[0]["rank_median_ms"] == "10.0 9.5"

    md = render_text(result, "md")
    assert "| `lenet5` | 4 | fp32 | 10.00 |" in md and "| ranks |" in md


def test_single_device_rows_keep_their_schema():
    row = BenchRow(model="m", device="cpu", device_name="CPU", batch=1, dtype="fp32",
                   mode="infer", input_size=(3, 8, 8))
    assert "ddp" not in row.to_dict()


def test_renderers_and_records_do_not_import_torch(import_checks):
    # cnnscope.report.ddp_render, cnnscope.benchmark.comm_model and .records imported in a
    # fresh interpreter (tests/conftest.py)
    assert import_checks["ddp_renderers_and_records_import_torch"] is False, "torch imported"
