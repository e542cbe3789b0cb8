#!/bin/sh
# Regenerates the PTX test data from the .cu sources here, and from the shared
# tests/cuda/kernels/spin.cu (the tests themselves never need nvcc). nvcc is taken from
# $CRAC_NVCC, else from the path scripts/setup.sh records.
set -eu
cd "$(dirname "$0")"
NVCC="${CRAC_NVCC:-$(cat "$HOME/.cache/crac-tools/nvcc-path")}"

# Debug (-G) builds name the build machine's directories: keep only file base names in
# `.file`, and drop the DWARF `.section` blocks (which hold the same paths as bytes).
scrub() {
    awk '
        /^[ \t]*\.section/ { skip = 1; next }
        skip && /^[ \t]*}/ { skip = 0; next }
        skip { next }
        /^[ \t]*\.file/ { sub(/"[^"]*\//, "\""); print; next }
        { print }
    ' "$1" > "$1.tmp" && mv "$1.tmp" "$1"
}
"$NVCC" -ptx -arch=compute_75 kernels.cu -o kernels_sm75.ptx
"$NVCC" -ptx -arch=compute_90 -O3 kernels.cu -o kernels_sm90.ptx
"$NVCC" -ptx -arch=compute_75 -O0 -G kernels.cu -o kernels_debug.ptx
scrub kernels_debug.ptx
"$NVCC" -ptx -arch=compute_75 -O3 bench.cu -o bench.ptx
"$NVCC" -ptx -arch=compute_90 extra.cu -o extra_sm90.ptx
"$NVCC" -ptx -arch=compute_75 more.cu -o more_sm75.ptx
"$NVCC" -ptx -arch=compute_75 -std=c++17 cub.cu -o cub_sm75.ptx
"$NVCC" -ptx -arch=compute_75 -std=c++17 cub2.cu -o cub2_sm75.ptx
"$NVCC" -ptx -arch=compute_75 fptr.cu -o fptr_sm75.ptx
"$NVCC" -ptx -arch=compute_75 assert.cu -o assert_sm75.ptx
"$NVCC" -ptx -arch=compute_75 ../../../../tests/cuda/kernels/spin.cu -o spin_sm75.ptx
"$NVCC" -ptx -arch=compute_75 -G ../../../../tests/cuda/kernels/spin.cu -o spin_debug.ptx
scrub spin_debug.ptx
