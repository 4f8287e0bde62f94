#!/usr/bin/env bash
# Everything the bench issue asks of a GPU, in one command: the CUDA tests, the
# side-by-side with timm's benchmark.py method, and the resnet50 sweep of docs/bench.md.
#
# Written for the first session that is lent a GPU (none has been so far). Run it from
# the repository root on the GPU machine; it needs no install there (PYTHONPATH is the
# checkout) and no network. Each step runs even when an earlier one failed; the exit
# status is the number of steps that failed.
#
#   benchmarks/gpu_session.sh                  # results in $OUT, else reports/gpu/
#   DEVICE=cpu MODELS=lenet5 BATCHES=2 BATCH=4 benchmarks/gpu_session.sh   # plumbing check
#
# Then copy what it wrote into reports/ (bench_vs_timm.md, bench_cuda.md), put the
# figures and the device name in docs/bench.md ("Measured here"), and note them in the issue.
set -uo pipefail
cd "$(dirname "$0")/.."

DEVICE="${DEVICE:-cuda}"
MODELS="${MODELS:-resnet50}"     # the issue's performance target is resnet50
BATCH="${BATCH:-128}"            # ... at batch 128, against timm's method
BATCHES="${BATCHES:-1,32,128}"   # the sweep of docs/bench.md
DEST="${OUT:-reports/gpu}"
mkdir -p "$DEST"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY="${PYTHON:-python3}"
failed=0

step() {  # step NAME COMMAND...: run, log to $DEST/NAME.log, count a failure
    local name="$1"; shift
    echo "== $name: $*"
    local start=$SECONDS
    "$@" 2>&1 | tee "$DEST/$name.log"
    local rc=${PIPESTATUS[0]}
    echo "== $name: exit $rc after $((SECONDS - start)) s"
    [ "$rc" -eq 0 ] || failed=$((failed + 1))
}

if [ "$DEVICE" = cuda ]; then
    step gpu nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
fi
step env "$PY" -c "import json, torch; from cnnscope.bench.env import collect_env; \
print(json.dumps(collect_env('$DEVICE'), indent=1))"
# The tests marked cuda (events, peak memory, OOM recovery, CUDA graphs, compile,
# per-layer events); skipped, not failed, on a machine without CUDA.
step cuda_tests "$PY" -m pytest -q -m cuda tests/bench -p no:cacheprovider
# The issue's target: cnnscope's throughput >= timm's method, same settings and session.
step bench_vs_timm "$PY" benchmarks/bench_vs_timm.py --device "$DEVICE" --models "$MODELS" \
    --batch "$BATCH" --dtype fp32,bf16 --mode infer,train --channels-last \
    -o "$DEST/bench_vs_timm.md"
# The example sweep of docs/bench.md, as a table for reports/ and as JSON with the environment.
step bench_sweep "$PY" -m cnnscope bench "$MODELS" --device "$DEVICE" --batch "$BATCHES" \
    --dtype fp32,bf16 --mode infer,train --channels-last --format json -o "$DEST/bench_cuda.json"
step bench_sweep_md "$PY" -c "import json, sys; \
from cnnscope.bench.records import BenchResult; from cnnscope.report.bench_render import to_markdown; \
sys.stdout.write(to_markdown(BenchResult.from_dict(json.load(open('$DEST/bench_cuda.json')))))"
cp "$DEST/bench_sweep_md.log" "$DEST/bench_cuda.md" 2>/dev/null || true
# cnnscope memory's estimate against torch.cuda.max_memory_allocated (reports/memory.md
# has the CPU side); MEMORY_MODELS=resnet18 for a quick plumbing check.
step memory_check "$PY" benchmarks/memory_check.py --device "$DEVICE" \
    --models "${MEMORY_MODELS:-resnet18,resnet50,mobilenet_v2,densenet121,unet}" \
    -o "$DEST/memory_$DEVICE.md"

echo "== $failed step(s) failed; results in $DEST"
exit "$failed"
