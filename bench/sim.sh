#!/usr/bin/env bash
# Benchmarks the sim device: the PTX interpreter alone (crac-ptx's ptx_bench example) and the
# whole Sim device path on a 2-D stencil (an ignored test in crates/sim/tests/bench.rs), both in
# release. Prints throughput and the ratio to native code measured in the same run; never
# asserts on time. Set CRAC_BENCH_STEPS to change the stencil's launch count (default 100).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "-- PTX interpreter (cargo run --release -p crac-ptx --example ptx_bench)"
if [ -f crates/ptx/examples/ptx_bench.rs ]; then
    cargo run --quiet --release -p crac-ptx --example ptx_bench
else
    echo "ptx_bench example not present in crates/ptx/examples; skipping the interpreter benchmark" >&2
fi

echo "-- sim device end to end: stencil (cargo test --release -p crac-sim --test bench)"
cargo test --quiet --release -p crac-sim --test bench -- --ignored --nocapture --test-threads 1 \
    2>&1 | grep -v '^running\|^test result\|^\.\?$'
