#!/usr/bin/env bash
# Runs crac's whole test suite: installs what the tests need (scripts/setup.sh), builds every
# binary once, then runs the unit, integration and end-to-end tests of every crate.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --workspace --bins --quiet
bash scripts/build-libcrac.sh "${CARGO_TARGET_DIR:-$PWD/target}/debug"
bash scripts/link-shim.sh   # libcudart.so.12/.13 next to crac, for the gpu_* tests
cargo test --workspace --no-fail-fast "$@"
