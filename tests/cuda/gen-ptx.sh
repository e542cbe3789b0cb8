#!/usr/bin/env bash
# Regenerates tests/cuda/ptx/*.ptx from tests/cuda/kernels/*.cu, so the PTX interpreter can be
# tested on machines without nvcc. nvcc comes from $CRAC_NVCC or the path scripts/setup.sh
# records in ~/.cache/crac-tools/nvcc-path.
set -euo pipefail
cd "$(dirname "$0")"
nvcc="${CRAC_NVCC:-}"
if [[ -z "$nvcc" && -f "$HOME/.cache/crac-tools/nvcc-path" ]]; then
    nvcc="$(cat "$HOME/.cache/crac-tools/nvcc-path")"
fi
if [[ -z "$nvcc" || ! -x "$nvcc" ]]; then
    echo "nvcc not found: run scripts/setup.sh" >&2
    exit 1
fi
mkdir -p ptx
for cu in kernels/*.cu; do
    name="$(basename "$cu" .cu)"
    "$nvcc" -ptx -arch=compute_75 "$cu" -o "ptx/$name.ptx"
done
echo "regenerated $(ls ptx/*.ptx | wc -l) PTX files in tests/cuda/ptx"
