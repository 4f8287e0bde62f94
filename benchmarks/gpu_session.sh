#!/usr/bin/env bash
# Everything the bench issue asks of a GPU, in one command, in under 8 minutes of wall time
# on one H100: the `cuda` tests (attention kernels, events, peak memory, OOM, CUDA graphs,
# per-layer timing), bench against timm's benchmark.py method (resnet50 b128, fp32/bf16,
# infer/train), the batch sweep, per-layer CUDA timing, the memory planner against
# torch.cuda.max_memory_allocated, then DDP on NCCL (one rank if that is all there is).
#
# Run it from the repository root on the GPU machine; it installs nothing and needs no
# network (PYTHONPATH is the checkout). A preflight checks first what it needs; every
# step has a timeout, and the whole session a budget (SESSION_S, default 450 s): a step
# that would start past it is skipped. Each step runs even when an earlier one failed;
# the exit status is the number of failed or skipped steps. Every figure and log lands
# in one folder: $OUT, else reports/gpu/.
#
#   benchmarks/gpu_session.sh
#   DEVICE=cpu MODELS=lenet5 BATCHES=1 BATCH=2 LAYER_BATCH=2 TIMM_ITERS=2 DTYPES=bf16 MODES=train \
#       TESTS=tests/bench/test_runner_cuda.py MEMORY_MODELS=lenet5 MEMORY_BATCH=2 \
#       TIMING="--iters 2 --warmup 1" BENCH_ARGS="--no-ceiling --max-warmup 1" \
#       TIMM_ARGS="--num-warm-iter 1" DDP_RANKS=0 \
#       benchmarks/gpu_session.sh       # its plumbing on a CPU (a default test runs this)
#
# Then copy what it wrote into reports/ and the figures into the docs (page: bench).
set -uo pipefail
cd "$(dirname "$0")/.."

DEVICE="${DEVICE:-cuda}"
MODELS="${MODELS:-resnet50}"          # the issue's target: resnet50 ...
BATCH="${BATCH:-128}"                 # ... at batch 128, against timm's method
BATCHES="${BATCHES:-1,32,128}"        # the batch sweep
LAYER_BATCH="${LAYER_BATCH:-32}"      # per-layer timing
DTYPES="${DTYPES:-fp32,bf16}"
MODES="${MODES:-infer,train}"
MEMORY_MODELS="${MEMORY_MODELS:-resnet18,resnet50}"
MEMORY_BATCH="${MEMORY_BATCH:-}"      # empty: memory_check.py's own batches
TIMING="${TIMING:---min-time 1}"      # how each bench row is timed (1 s of iterations, more if unsteady)
TIMM_ITERS="${TIMM_ITERS:-40}"        # timm's --num-bench-iter default
TESTS="${TESTS:-tests}"
BENCH_ARGS="${BENCH_ARGS:-}"          # more `cnnscope bench` options (the plumbing run: fewer iterations)
TIMM_ARGS="${TIMM_ARGS:-}"            # more bench_vs_timm.py options
DDP_RANKS="${DDP_RANKS:-1}"           # 0: no DDP bench step
SESSION_S="${SESSION_S:-450}"
DEST="${OUT:-reports/gpu}"
PY="${PYTHON:-python3}"
mkdir -p "$DEST"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export CNNSCOPE_CACHE_DIR="${CNNSCOPE_CACHE_DIR:-$DEST/cache}"  # a fresh ceiling, kept with the figures
failed=0
begin=$SECONDS

step() {  # step NAME TIMEOUT_S COMMAND...: run with a timeout, log to $DEST/NAME.log
    local name="$1" limit="$2"; shift 2
    local left=$((SESSION_S - (SECONDS - begin)))
    if [ "$left" -lt 10 ]; then
        echo "== $name: skipped: the session budget (${SESSION_S} s) is spent" | tee "$DEST/$name.log"
        failed=$((failed + 1))
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    echo "== $name (timeout ${limit} s): $*"
    local start=$SECONDS
    timeout --kill-after=10 "$limit" "$@" 2>&1 | tee "$DEST/$name.log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" -eq 124 ] && echo "== $name: timed out after ${limit} s" | tee -a "$DEST/$name.log"
    echo "== $name: exit $rc after $((SECONDS - start)) s"
    [ "$rc" -eq 0 ] || failed=$((failed + 1))
}

# What the script needs, checked before anything runs (nothing can be installed there).
preflight() {
    command -v timeout > /dev/null || { echo "preflight: no 'timeout' (coreutils)"; return 1; }
    timeout 60 "$PY" - "$DEVICE" <<'PY'
import importlib, shutil, sys
device = sys.argv[1]
missing = [m for m in ("torch", "typer", "rich", "pytest", "cnnscope") if importlib.util.find_spec(m) is None]
if missing:
    sys.exit(f"preflight: missing Python packages: {', '.join(missing)}")
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, CUDA {torch.version.cuda}")
if device.startswith("cuda"):
    if not torch.cuda.is_available():
        sys.exit("preflight: DEVICE=cuda but torch sees no GPU (a CPU-only torch build?)")
    print(f"{torch.cuda.device_count()} GPU(s): {torch.cuda.get_device_name(0)}")
    if shutil.which("nvidia-smi") is None:
        print("preflight: note: no nvidia-smi: clocks, power and driver are not recorded")
for name in ("timm", "torchvision"):
    print(f"{name}: {'present' if importlib.util.find_spec(name) else 'absent (not needed)'}")
PY
}
echo "== preflight"
preflight 2>&1 | tee "$DEST/preflight.log"
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
    echo "== preflight failed: nothing else run; see $DEST/preflight.log"
    exit 1
fi

if [ "$DEVICE" = cuda ]; then
    step gpu 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,power.draw,power.limit,temperature.gpu --format=csv
fi
step env 60 "$PY" -c "import json, torch; from cnnscope.benchmark.env import collect_env; \
print(json.dumps(collect_env('$DEVICE'), indent=1))"
# The tests marked cuda, one at a time (-p no:xdist: timings must not share the GPU),
# without the slow ones (a cold inductor compile takes 60-90 s)
# and without DDP (its launches come last: one NCCL hang must not eat the window).
step cuda_tests 150 "$PY" -m pytest -q -p no:xdist -m "cuda and not slow" "$TESTS" \
    --ignore=tests/bench/test_ddp_cuda.py -p no:cacheprovider
# The issue's target: cnnscope's throughput >= timm's method, same settings and session.
step bench_vs_timm 150 "$PY" benchmarks/bench_vs_timm.py --device "$DEVICE" --models "$MODELS" \
    --batch "$BATCH" --dtype "$DTYPES" --mode "$MODES" --channels-last \
    --num-bench-iter "$TIMM_ITERS" $TIMING $TIMM_ARGS -o "$DEST/bench_vs_timm.md"
# The batch sweep: JSON (rows written as they finish) and Markdown rendered from it.
step bench_sweep 120 "$PY" -m cnnscope bench "$MODELS" --device "$DEVICE" --batch "$BATCHES" \
    --dtype "$DTYPES" --mode "$MODES" --channels-last $TIMING --no-progress \
    $BENCH_ARGS -o "$DEST/bench_cuda.json"
step bench_sweep_md 30 "$PY" -c "import json, sys; \
from cnnscope.benchmark.records import BenchResult; from cnnscope.report.render import render_text; \
open(sys.argv[1], 'w').write(render_text(BenchResult.from_dict(json.load(open(sys.argv[2]))), 'md'))" \
    "$DEST/bench_cuda.md" "$DEST/bench_cuda.json"
# Per-layer CUDA timing (events around every layer, its roofline verdict).
step per_layer 90 "$PY" -m cnnscope bench "$MODELS" --device "$DEVICE" --batch "$LAYER_BATCH" \
    --dtype bf16 --mode "$MODES" --per-layer $TIMING --no-progress \
    $BENCH_ARGS -o "$DEST/per_layer_cuda.json"
# The planner against torch.cuda.max_memory_allocated (the step above the baseline).
step memory_check 90 "$PY" benchmarks/memory_check.py --device "$DEVICE" \
    --models "$MEMORY_MODELS" ${MEMORY_BATCH:+--batch "$MEMORY_BATCH"} -o "$DEST/memory_$DEVICE.md"
# DDP last: on NCCL with the GPUs there are (one rank if that is all).
step ddp_tests 90 "$PY" -m pytest -q -p no:xdist -m "cuda and not slow" tests/bench/test_ddp_cuda.py -p no:cacheprovider
if [ "$DDP_RANKS" != 0 ]; then
    step ddp_bench 90 "$PY" -m cnnscope bench "$MODELS" --ddp "$DDP_RANKS" --device "$DEVICE" \
        --batch "$LAYER_BATCH" $TIMING --no-progress $BENCH_ARGS -o "$DEST/ddp_$DEVICE.json"
fi

echo "== $failed step(s) failed; $((SECONDS - begin)) s; results in $DEST"
exit "$failed"
