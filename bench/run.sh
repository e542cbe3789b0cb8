#!/usr/bin/env bash
# crac's benchmark entry point: runs every benchmark script in this directory and prints their
# ratios against reference runs taken in the same script (never absolute timings alone).
# Usage: bash bench/run.sh [launch|sim|shim|ckpt|gpu-ckpt|jupyter ...]   (default: launch sim
# shim; ckpt, gpu-ckpt and jupyter write images of gigabytes, so they run only when named)
set -euo pipefail
cd "$(dirname "$0")"
wanted=("$@")
[ ${#wanted[@]} -gt 0 ] || wanted=(launch sim shim)
for b in "${wanted[@]}"; do
    if [ ! -f "$b.sh" ]; then
        echo "bench: no benchmark named $b (have: $(ls *.sh | grep -v run.sh | sed 's/\.sh$//' | tr '\n' ' '))" >&2
        exit 2
    fi
    echo "== $b =="
    bash "$b.sh"
done
