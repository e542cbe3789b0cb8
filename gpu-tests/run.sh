#!/usr/bin/env bash
# crac's real-GPU scenarios.
#
#   gpu-tests/run.sh [--build-only]
#
# Where cargo and nvcc are available (any machine: no GPU or CUDA driver is needed to build),
# it builds crac, links the libcudart shim (scripts/link-shim.sh) and compiles the whole CUDA
# programs of tests/cuda/programs/ (`-cudart shared`, PTX for compute_80 that the driver JIT-
# compiles for the GPU at hand) into target/gpu-tests/. With --build-only it stops there: copy
# the tree with its target/ to a GPU machine and run this script there (it then uses what was
# built). On a machine with an NVIDIA GPU it runs every program under `crac_launch --gpu cuda`
# and compares its stdout with tests/cuda/programs/<name>.expected (the same outputs the `sim`
# device gives in the gpu_* tests), checks that a statically linked runtime is refused with the
# `-cudart shared` remedy, runs the CUDA-aware checkpoint scenarios (gpu-tests/ckpt.sh: the
# ckpt_* programs checkpointed at a random moment, killed and restarted, restart chains,
# checkpoint-and-continue, an image taken on the GPU restarted on the sim device), measures the
# checkpoint's device drain rate against the GPU's pinned device-to-host bandwidth in the same
# run (gpu-tests/drain.sh, with a release build of crac and the shim in target/gpu-tests/release
# and the programs gpu-tests/programs/d2h_bandwidth.cu and bench/programs/gpu_ckpt_mem.cu), and
# then runs the transparent-launch end-to-end tests built by `cargo test --no-run -p crac-e2e`.
# Without a GPU it says so and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "gpu-tests: $*" >&2; }
out=target/gpu-tests
programs=(basics streams symbols threads errors signal_storm modern device_printf
    ckpt_stencil ckpt_queued ckpt_threads ckpt_realloc ckpt_symbols ckpt_pinned)

nvcc_path() {
    if [ -n "${CRAC_NVCC:-}" ]; then echo "$CRAC_NVCC"; return; fi
    local rec="${CRAC_TOOLS:-$HOME/.cache/crac-tools}/nvcc-path"
    [ -f "$rec" ] && cat "$rec"
}

build() {
    local nvcc="$1"
    say "building crac, the shim and the CUDA programs into $out"
    cargo build --quiet -p crac
    local target="${CARGO_TARGET_DIR:-$PWD/target}"
    mkdir -p "$out/bin" "$out/programs"
    bash scripts/link-shim.sh debug "$out/bin/crac-shim"
    install -m 0755 "$target/debug/crac" "$out/bin/crac"
    local lib
    lib="$(dirname "$(dirname "$nvcc")")/lib"
    for p in "${programs[@]}"; do
        "$nvcc" -cudart shared -arch=compute_80 -code=compute_80 -O2 -I tests/cuda/programs \
            -L"$lib" -o "$out/programs/$p" "tests/cuda/programs/$p.cu" -lpthread
    done
    # nvcc's default: the runtime linked statically, which crac must refuse.
    "$nvcc" -arch=compute_80 -code=compute_80 -O2 -I tests/cuda/programs -L"$lib" \
        -o "$out/programs/basics-static" tests/cuda/programs/basics.cu
    # gpu-tests/drain.sh: the drain rate is timed on a release build; the bandwidth yardstick
    # runs natively, never under crac, so it links the runtime statically and needs nothing but
    # the driver on the GPU machine.
    say "building crac and the shim (release) into $out/release for gpu-tests/drain.sh"
    cargo build --quiet --release -p crac
    mkdir -p "$out/release"
    bash scripts/link-shim.sh release "$out/release/crac-shim"
    install -m 0755 "$target/release/crac" "$out/release/crac"
    "$nvcc" -cudart shared -arch=compute_80 -code=compute_80 -O2 -L"$lib" \
        -o "$out/programs/gpu_ckpt_mem" bench/programs/gpu_ckpt_mem.cu
    "$nvcc" -cudart static -arch=compute_80 -code=compute_80 -O2 -L"$lib" \
        -o "$out/programs/d2h_bandwidth" gpu-tests/programs/d2h_bandwidth.cu
}

nvcc="$(nvcc_path || true)"
if command -v cargo >/dev/null 2>&1 && [ -n "$nvcc" ] && [ -x "$nvcc" ]; then
    build "$nvcc"
elif [ ! -x "$out/bin/crac" ]; then
    say "nothing built in $out and no cargo+nvcc here to build it: run this script on a build machine first (bash scripts/setup.sh installs nvcc), then copy the tree with target/"
    [ "${1:-}" = "--build-only" ] && exit 1
fi
[ "${1:-}" = "--build-only" ] && { say "built; copy the tree with target/ to a GPU machine and run gpu-tests/run.sh there"; exit 0; }

if ! ls /dev/nvidia0 >/dev/null 2>&1 && ! command -v nvidia-smi >/dev/null 2>&1; then
    echo "gpu-tests: no NVIDIA GPU on this machine (no /dev/nvidia0, no nvidia-smi); skipping"
    exit 0
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

status=0
for p in "${programs[@]}"; do
    got="$(mktemp)"
    if "$out/bin/crac" launch --gpu cuda -- "$out/programs/$p" </dev/null >"$got" 2>"$got.err" \
        && diff -u "tests/cuda/programs/$p.expected" "$got" >"$got.diff"; then
        echo "gpu-tests: $p: ok"
    else
        echo "gpu-tests: $p: FAILED"
        cat "$got.diff" "$got.err" >&2 || true
        status=1
    fi
    rm -f "$got" "$got.err" "$got.diff"
done
if "$out/bin/crac" launch --gpu cuda -- "$out/programs/basics-static" >/dev/null 2>"$out/static.err"; then
    echo "gpu-tests: static runtime: FAILED (ran instead of being refused)"
    status=1
elif grep -q -- "-cudart shared" "$out/static.err"; then
    echo "gpu-tests: static runtime refused with the remedy: ok"
else
    echo "gpu-tests: static runtime: FAILED (refused without the -cudart shared remedy)"
    cat "$out/static.err" >&2
    status=1
fi

bash gpu-tests/ckpt.sh "$out" || status=1
bash gpu-tests/drain.sh "$out" || status=1

# The transparent-launch tests, built by `cargo test --no-run -p crac-e2e` on the build machine.
for t in target/debug/deps/launch-*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    echo "gpu-tests: running $t"
    "$t" || status=1
done
exit $status
