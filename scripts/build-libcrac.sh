#!/usr/bin/env bash
# Builds libcrac.so (the C API of include/crac.h, source in lib/crac/) into DIR.
# Usage: bash scripts/build-libcrac.sh DIR
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:?usage: build-libcrac.sh DIR}"
mkdir -p "$out"
"${CC:-cc}" -O2 -g -Wall -Wextra -fPIC -shared -pthread -I"$root/include" \
    -Wl,-soname,libcrac.so.0 -o "$out/libcrac.so.0.tmp$$" "$root/lib/crac/crac.c"
mv -f "$out/libcrac.so.0.tmp$$" "$out/libcrac.so.0"
ln -sfn libcrac.so.0 "$out/libcrac.so"
