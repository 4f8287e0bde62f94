"""``bench --ddp`` on CUDA: NCCL, one GPU per rank. Skipped without a GPU.

Not yet run: no GPU has been lent to this project's DDP work. The path is written from
PyTorch's documented semantics (NCCL needs CUDA tensors and one device per rank:
``torch.cuda.set_device(LOCAL_RANK)``, ``DDP(device_ids=[LOCAL_RANK])``). One GPU is
enough for a world of 1 (NCCL with a single rank); 2 ranks need 2 GPUs.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

FAST = ["--device", "cuda", "--iters", "5", "--warmup", "2", "--max-warmup", "2", "--no-ceiling",
        "--no-progress", "--format", "json"]


def run(tmp_path, *args):
    env = dict(os.environ, CNNSCOPE_CACHE_DIR=str(tmp_path / "cache"), TMPDIR=str(tmp_path))
    for key in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        env.pop(key, None)
    return subprocess.run([sys.executable, "-m", "cnnscope", "bench", *args], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp_path)


def check_row(row, world):
    d = row["ddp"]
    assert row["status"] == "ok" and d["backend"] == "nccl" and d["world_size"] == world
    params = 25_557_032  # resnet50, torchvision's published num_params
    assert d["allreduce_bytes"] == params * 4 == sum(d["bucket_bytes"])
    assert d["single_median_ms"] > 0 and d["allreduce_ms"] > 0
    assert len(d["rank_median_ms"]) == world


def test_nccl_one_rank(tmp_path):
    done = run(tmp_path, "resnet50", "--ddp", "1", "--batch", "16", *FAST)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["rows"]
    check_row(row, 1)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 GPUs")
def test_nccl_two_ranks(tmp_path):
    done = run(tmp_path, "resnet50", "--ddp", "2", "--batch", "16", *FAST)
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)["rows"]
    check_row(row, 2)


def test_more_ranks_than_gpus_is_a_one_line_error(tmp_path):
    n = torch.cuda.device_count() + 1
    done = run(tmp_path, "lenet5", "--ddp", str(n), *FAST)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"--ddp {n} needs {n} GPUs" in lines[0]
