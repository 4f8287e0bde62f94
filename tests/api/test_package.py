"""The top-level API: lazy names; ``cnnscope.bench`` a plain function beside the timing package."""

import cnnscope


def test_import_cnnscope_does_not_import_torch(import_checks):
    # "import sys, cnnscope, cnnscope.cli.main" in a fresh interpreter (tests/conftest.py)
    assert import_checks["api_and_cli_import_torch"] is False


def test_api_names():
    for name in ("analyze", "compare", "bench", "resolve", "smallest_input", "ModelReport",
                 "CnnscopeError"):
        assert callable(getattr(cnnscope, name)), name


def test_bench_is_a_plain_function_beside_the_timing_package():
    import types

    import cnnscope.benchmark as package
    from cnnscope.api import bench
    from cnnscope.benchmark import BenchSettings

    # Importing the timing package does not replace the function (it did when the package
    # was named cnnscope.bench: an imported submodule sets its parent's attribute).
    assert isinstance(package, types.ModuleType) and package is cnnscope.benchmark
    assert cnnscope.bench is bench and isinstance(cnnscope.bench, types.FunctionType)
    assert BenchSettings(device="cpu").device == "cpu"
    row = cnnscope.bench("lenet5", device="cpu", iters=3, warmup=1, max_warmup=1)
    assert row.ok and row.model == "lenet5" and row.median_ms > 0
    assert abs(row.throughput - 1000.0 / row.median_ms) < 1e-6 * row.throughput  # batch 1
