#!/usr/bin/env bash
# crac's real-GPU scenarios. Build on any machine (no GPU or CUDA needed to build), copy the
# tree with its target/ to a GPU machine, and run this there. Without a GPU it says so and exits 0.
#
# Today it runs the transparent-launch end-to-end tests on the GPU machine (the launch does not
# depend on the GPU); the CUDA scenarios (`--gpu cuda`) join as the cudart shim and the CUDA-aware
# checkpoint land.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! ls /dev/nvidia0 >/dev/null 2>&1 && ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu-tests: no NVIDIA GPU on this machine (no /dev/nvidia0, no nvidia-smi); skipping"
    exit 0
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
if [ ! -x target/debug/crac ]; then
    echo "gpu-tests: target/debug/crac missing; build first with: cargo build --workspace --bins" >&2
    exit 1
fi
# Test binaries are built on the build machine: `cargo test --no-run -p crac-e2e` there.
status=0
for t in target/debug/deps/launch-*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    echo "gpu-tests: running $t"
    "$t" || status=1
done
exit $status
