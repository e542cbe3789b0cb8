#!/usr/bin/env bash
# Runs crac's whole test suite: installs what the tests need (scripts/setup.sh), builds every
# binary once, then runs the unit, integration and end-to-end tests of every crate, then the
# Jupyter kernel's pytest suite. Either failing fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --workspace --bins --quiet
bash scripts/build-libcrac.sh "${CARGO_TARGET_DIR:-$PWD/target}/debug"
bash scripts/link-shim.sh   # libcudart.so.12/.13 next to crac, for the gpu_* tests
cargo_status=0
cargo test --workspace --no-fail-fast "$@" || cargo_status=$?

# The "Python 3 (crac)" Jupyter kernel: real kernels driven by jupyter_client, and the browser
# test (python/tests/, pytest from the jupyter venv that scripts/setup.sh made).
echo "test: jupyter kernel tests (pytest python/tests)" >&2
jupyter_python="${CRAC_TOOLS:-$HOME/.cache/crac-tools}/jupyter/bin/python"
pytest_status=0
CRAC_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/crac" \
    "$jupyter_python" -m pytest -q -p no:cacheprovider python/tests || pytest_status=$?
if [ "$cargo_status" -ne 0 ] || [ "$pytest_status" -ne 0 ]; then
    echo "test: FAILED (cargo test: exit $cargo_status, jupyter pytest: exit $pytest_status)" >&2
    exit 1
fi
