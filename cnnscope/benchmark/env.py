"""The environment a benchmark ran in, recorded with its results.

A timing means little without the software and hardware that produced it: torch and
CUDA/cuDNN versions, the driver, the device, the math settings (TF32, cudnn.benchmark)
and, on a CPU, the threads and the load of the machine.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from functools import lru_cache
from typing import Any

import torch


@lru_cache(maxsize=None)
def cpu_name() -> str:
    """The CPU model as the OS names it ("AMD EPYC 7B12"), or the architecture."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True,
                                 text=True, timeout=5)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_governor() -> str | None:
    """The CPU frequency governor ("performance", "powersave"...), or None where the OS
    does not show it (most containers and VMs). Google Benchmark warns when it scales
    the frequency; cnnscope records it with the figures."""
    try:
        with open("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor", encoding="ascii") as fh:
            text = fh.read(64).strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text if text.isidentifier() else None


def device_name(device: torch.device | str) -> str:
    """"NVIDIA H100 80GB HBM3" for a GPU; "AMD EPYC (2 logical CPUs)" for the CPU."""
    dev = torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"{cpu_name()} ({os.cpu_count()} logical CPUs)"


@lru_cache(maxsize=None)
def nvidia_driver_version() -> str | None:
    """The NVIDIA driver version from nvidia-smi (torch does not expose it), or None."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = out.stdout.strip().splitlines()
    return lines[0].strip() if out.returncode == 0 and lines else None


# What the GPU was doing when the sweep started: a clock held low (power or thermal
# limit, a low pstate) or another process on the GPU changes every figure.
GPU_QUERY = ("clocks.sm", "clocks.max.sm", "clocks.mem", "power.draw", "power.limit",
             "temperature.gpu", "pstate")  # every field known to drivers old and new


def parse_gpu_query(text: str) -> dict[str, Any]:
    """One line of ``nvidia-smi --query-gpu=<GPU_QUERY> --format=csv,noheader,nounits``
    as a dict (numbers as numbers; "[N/A]" and the like as None)."""
    values = [v.strip() for v in text.strip().splitlines()[0].split(",")] if text.strip() else []
    out: dict[str, Any] = {}
    for key, value in zip(GPU_QUERY, values):
        name = "gpu_" + key.replace(".", "_")
        try:
            number = float(value)
            out[name] = int(number) if number.is_integer() else number
        except ValueError:
            out[name] = value if value and not value.startswith("[") else None
    return out


def parse_compute_apps(text: str, own_pid: int) -> list[dict[str, Any]]:
    """``nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits``:
    the processes on the GPU other than ``own_pid``."""
    apps = []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) < 2 or not parts[0].isdigit() or int(parts[0]) == own_pid:
            continue
        apps.append({"pid": int(parts[0]),
                     "used_memory_mib": int(parts[1]) if parts[1].isdigit() else None})
    return apps


def gpu_state(device: torch.device) -> dict[str, Any]:
    """Clocks, power, temperature and other processes of ``device`` from nvidia-smi
    ({} without it)."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return {}
    try:
        uuid = str(torch.cuda.get_device_properties(device).uuid)
        select = ["-i", uuid if uuid.startswith("GPU-") else f"GPU-{uuid}"]
    except (AttributeError, RuntimeError):
        select = ["-i", str(device.index or 0)]
    state: dict[str, Any] = {}
    try:
        out = subprocess.run([exe, *select, f"--query-gpu={','.join(GPU_QUERY)}",
                              "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=10)
        if out.returncode == 0:
            state.update(parse_gpu_query(out.stdout))
        apps = subprocess.run([exe, *select, "--query-compute-apps=pid,used_memory",
                               "--format=csv,noheader,nounits"], capture_output=True, text=True,
                              timeout=10)
        if apps.returncode == 0:
            state["gpu_other_processes"] = parse_compute_apps(apps.stdout, os.getpid())
    except (OSError, subprocess.SubprocessError):
        pass
    return state


def tf32_settings() -> dict[str, Any]:
    """The fp32 math settings for matmuls and cuDNN convolutions, in whichever API exists."""
    matmul = torch.backends.cuda.matmul
    conv = getattr(torch.backends.cudnn, "conv", None)
    if hasattr(matmul, "fp32_precision") and conv is not None and hasattr(conv, "fp32_precision"):
        return {"matmul_fp32_precision": matmul.fp32_precision,
                "cudnn_conv_fp32_precision": conv.fp32_precision}
    return {"matmul_allow_tf32": bool(matmul.allow_tf32),
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32)}


def collect_env(device: torch.device | str, *, cudnn_benchmark: bool | None = None) -> dict[str, Any]:
    """A JSON-ready description of the software, the device and the settings."""
    from cnnscope.version import __version__

    dev = torch.device(device)
    env: dict[str, Any] = {
        "cnnscope": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": str(dev),
        "device_type": dev.type,
        "device_name": device_name(dev),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda_runtime": torch.version.cuda,  # None on a CPU-only build
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark if cudnn_benchmark is None
                                else cudnn_benchmark),
        "mkldnn": torch.backends.mkldnn.is_available(),
    }
    env["cpu_governor"] = cpu_governor()
    try:
        env["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        env["load_average"] = None
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        env.update({
            "driver": nvidia_driver_version(),
            "compute_capability": f"{props.major}.{props.minor}",
            "device_memory_bytes": int(props.total_memory),
            "multiprocessors": int(props.multi_processor_count),
            "cuda_devices": torch.cuda.device_count(),
        })
        env.update(tf32_settings())
        env.update(gpu_state(dev))
    return env
