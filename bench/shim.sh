#!/usr/bin/env bash
# Benchmarks the cudart shim's added cost per CUDA call: a C program calling cudaGetDevice in a
# loop under `crac_launch --gpu sim` (export + fs switch to the thread's lower TCB + the lower
# half's table entry + runtime + switch back), against the same runtime entry
# (crac_replay::Runtime::call over the sim backend) called directly in-process by the
# direct_call example. Both in release; prints medians, the added nanoseconds (target: at most
# 30) and the ratio, and for information the same calls with the arch_prctl fallback. Never
# asserts on time.
set -euo pipefail
cd "$(dirname "$0")/.."

target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --quiet --release -p crac
bash scripts/link-shim.sh release >/dev/null 2>&1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/shim_calls" bench/programs/shim_calls.c \
    -L"$target/release/crac-shim" -l:libcudart.so.13

echo "-- through the shim (crac_launch --gpu sim bench/programs/shim_calls.c)"
shim_line="$("$target/release/crac" launch --gpu sim -- "$work/shim_calls")"
echo "$shim_line"
echo "-- through the shim with arch_prctl instead of wrfsbase (CRAC_SHIM_NO_FSGSBASE=1, kernels without FSGSBASE)"
CRAC_SHIM_NO_FSGSBASE=1 "$target/release/crac" launch --gpu sim -- "$work/shim_calls"
echo "-- direct, in-process (cargo run --release -p crac-cuda-shim --example direct_call)"
direct_line="$(cargo run --quiet --release -p crac-cuda-shim --example direct_call)"
echo "$direct_line"

shim_ns="$(echo "$shim_line" | sed -n 's/.*median \([0-9.]*\) ns.*/\1/p')"
direct_ns="$(echo "$direct_line" | sed -n 's/.*median \([0-9.]*\) ns.*/\1/p')"
awk -v s="$shim_ns" -v d="$direct_ns" 'BEGIN {
    added = s - d
    printf "added cost per call: %.1f ns (target <= 30 ns: %s); shim/direct ratio %.2f\n",
        added, (added <= 30 ? "met" : "NOT met"), s / d
}'
