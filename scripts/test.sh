#!/usr/bin/env bash
# Runs crac's whole test suite: installs what the tests need (scripts/setup.sh), builds every
# binary once, then runs the unit, integration and end-to-end tests of every crate.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --workspace --bins --quiet
cargo test --workspace --no-fail-fast "$@"
