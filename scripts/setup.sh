#!/usr/bin/env bash
# Installs what building and testing crac needs on a fresh Debian/Ubuntu machine:
# a C compiler, static libc (for the static test programs), Python with venv, and NVIDIA's nvcc
# and runtime headers from PyPI (no GPU is needed to compile). Safe to run again: every step is
# skipped when already done.
set -euo pipefail

CUDA_VERSION_DIR="cuda-13.0"
TOOLS="${CRAC_TOOLS:-$HOME/.cache/crac-tools}"

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(gcc)
command -v make >/dev/null 2>&1 || need_apt+=(make)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || need_apt+=(libc6-dev)
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || need_apt+=(python3-venv)
command -v curl >/dev/null 2>&1 || true
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]} with apt-get" >&2
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "setup: cargo not found; install Rust (rustup) first" >&2
    exit 1
fi

venv="$TOOLS/$CUDA_VERSION_DIR"
nvcc="$venv/lib/python3.11/site-packages/nvidia/cu13/bin/nvcc"
if [ ! -x "$(ls "$venv"/lib/python3*/site-packages/nvidia/cu13/bin/nvcc 2>/dev/null | head -n1)" ]; then
    echo "setup: installing nvcc 13.0 from PyPI into $venv (about 320 MB)" >&2
    mkdir -p "$TOOLS"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check \
        nvidia-cuda-nvcc==13.0.88 nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 \
        nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
fi
nvcc="$(ls "$venv"/lib/python3*/site-packages/nvidia/cu13/bin/nvcc | head -n1)"
cudalib="$(dirname "$(dirname "$nvcc")")/lib"
# Linking with -cudart shared needs the unversioned name.
[ -e "$cudalib/libcudart.so" ] || ln -s libcudart.so.13 "$cudalib/libcudart.so"
echo "$nvcc" > "$TOOLS/nvcc-path"
echo "setup: nvcc at $nvcc" >&2

# Jupyter: the venv the "Python 3 (crac)" kernel's tests (python/tests/) and bench/jupyter.sh run
# with. Pinned, so a test run today and one next month drive the same jupyter_client/ipykernel.
jupyter_venv="$TOOLS/jupyter"
jupyter_pins=(jupyter_client==8.6.3 ipykernel==6.29.5 pyzmq==26.2.0 pytest==8.3.4
              jupyterlab==4.3.4 playwright==1.49.1)
jupyter_stamp="$jupyter_venv/.crac-pins"
if [ "$(cat "$jupyter_stamp" 2>/dev/null)" != "${jupyter_pins[*]}" ]; then
    echo "setup: installing ${jupyter_pins[*]} into $jupyter_venv" >&2
    mkdir -p "$TOOLS"
    python3 -m venv "$jupyter_venv"
    "$jupyter_venv/bin/pip" install -q --disable-pip-version-check "${jupyter_pins[@]}"
    echo "${jupyter_pins[*]}" > "$jupyter_stamp"
fi
echo "setup: jupyter venv at $jupyter_venv" >&2
# The real-browser test's Chromium (Debian's package); its own script, skipped when absent.
if [ -f "$(dirname "$0")/setup-browser.sh" ]; then
    bash "$(dirname "$0")/setup-browser.sh"
fi
