#!/usr/bin/env bash
# Set up cnnscope on a fresh clone in one command: a virtual environment in .venv, the
# torch build that fits this machine, cnnscope with its test, plot and docs extras, and then
# cnnscope's main job, `cnnscope params resnet50`, as proof that it works.
#
# Which torch: the CUDA build (PyPI's default on Linux x86_64) only where an NVIDIA GPU is
# present; on a Linux x86_64 machine without one, the CPU build (about 200 MB instead of
# several GB), taken from a local wheel directory when pip's configuration has one, else
# from PyTorch's CPU index; elsewhere (macOS, aarch64) PyPI's build, which is the CPU one.
# Override with TORCH_SPEC, e.g. TORCH_SPEC="torch==2.13.0" ./setup.sh.
# Re-running it is safe: an existing .venv is reused and what is installed is kept.
set -euo pipefail
cd "$(dirname "$0")"

TORCH_VERSION=2.13.0
PYTHON=${PYTHON:-python3}

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip=(.venv/bin/python -m pip --quiet)
"${pip[@]}" install --upgrade pip

has_nvidia_gpu() { command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; }

if .venv/bin/python -c "import torch" >/dev/null 2>&1; then
    echo "setup: torch $(.venv/bin/python -c 'import torch; print(torch.__version__)') is already installed"
elif [ -n "${TORCH_SPEC:-}" ]; then
    # shellcheck disable=SC2086 # TORCH_SPEC may hold options as well as the requirement
    "${pip[@]}" install $TORCH_SPEC
elif [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] && ! has_nvidia_gpu; then
    cpu_wheel="torch==${TORCH_VERSION}+cpu"
    probe=$(mktemp -d)
    # A local wheel (pip's find-links) needs no network; only look further when there is none.
    if "${pip[@]}" download --no-deps --no-index -d "$probe" "$cpu_wheel" >/dev/null 2>&1; then
        "${pip[@]}" install "$cpu_wheel"
    else
        "${pip[@]}" install "$cpu_wheel" --extra-index-url https://download.pytorch.org/whl/cpu
    fi
    rm -rf "$probe"
else
    "${pip[@]}" install "torch==${TORCH_VERSION}"
fi

"${pip[@]}" install -e ".[test,plot,docs]"
# Pictures from `cnnscope graph` (svg, png): a wheel with Graphviz's dot. Where no wheel
# exists for the platform, Mermaid and DOT output still work and system Graphviz draws.
"${pip[@]}" install -e ".[graph]" \
    || echo "setup: no graphviz-pure wheel here; 'cnnscope graph -o x.svg' needs system Graphviz"
echo "setup: done. Activate with '. .venv/bin/activate', or run .venv/bin/cnnscope directly."
echo
.venv/bin/cnnscope params resnet50
