#!/usr/bin/env bash
# Links crac's libcudart shim: the crac-cuda-shim staticlib becomes libcudart.so.12 and
# libcudart.so.13, each with NVIDIA's SONAME and symbol version (every function NVIDIA's
# library exports, versioned `libcudart.so.N`, from crates/cuda-shim/symbols/), plus `sigaction`
# and `signal` (versioned GLIBC_2.2.5, so they interpose on the program's libc), and
# crac_shim_fsmap_insert (version CRAC_SHIM_1: with both libraries loaded, the second registers
# its threads with the first). rustc's own cdylib version script cannot carry named versions,
# hence this step.
#
# Usage: scripts/link-shim.sh [debug|release] [DEST_DIR]
#   DEST_DIR defaults to <target dir>/<profile>/crac-shim, next to the crac binary, where
#   crac_launch --gpu looks for it in a build tree.
set -euo pipefail
cd "$(dirname "$0")/.."

profile="${1:-debug}"
case "$profile" in
    debug) cargo_flags=() ; dir=debug ;;
    release) cargo_flags=(--release) ; dir=release ;;
    *) echo "link-shim: profile must be debug or release, not '$profile'" >&2; exit 2 ;;
esac
target="${CARGO_TARGET_DIR:-$PWD/target}"
dest="${2:-$target/$dir/crac-shim}"

cargo build --quiet -p crac-cuda-shim "${cargo_flags[@]}"
archive="$target/$dir/libcrac_cuda_shim.a"
[ -f "$archive" ] || { echo "link-shim: the build did not produce $archive" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$dest"
for major in 12 13; do
    soname="libcudart.so.$major"
    list="crates/cuda-shim/symbols/$soname.txt"
    {
        echo "GLIBC_2.2.5 { global: sigaction; signal; };"
        echo "CRAC_SHIM_1 { global: crac_shim_fsmap_insert; };"
        echo "$soname {"
        echo "  global:"
        sed 's/^\(.*\)$/    \1;/' "$list"
        echo "  local: *;"
        echo "};"
    } > "$work/$soname.map"
    # The constructor tells the Rust side which major it is linked as.
    printf 'extern void crac_shim_init(unsigned);\n__attribute__((constructor)) static void crac_shim_ctor(void) { crac_shim_init(%s); }\n' "$major" \
        > "$work/ctor$major.c"
    gcc -c -fPIC -O2 -o "$work/ctor$major.o" "$work/ctor$major.c"
    gcc -shared -o "$work/$soname" \
        -Wl,-soname,"$soname" \
        -Wl,--version-script="$work/$soname.map" \
        -Wl,--gc-sections -Wl,-z,now -Wl,-z,relro \
        "$work/ctor$major.o" \
        -Wl,--whole-archive "$archive" -Wl,--no-whole-archive \
        -lpthread -ldl -lm -lgcc_s
    # Replace atomically: a program running right now keeps its old file.
    install -m 0755 "$work/$soname" "$dest/.$soname.new"
    mv -f "$dest/.$soname.new" "$dest/$soname"
done
echo "link-shim: $dest/libcudart.so.12 and libcudart.so.13" >&2
