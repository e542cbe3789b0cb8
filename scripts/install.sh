#!/usr/bin/env bash
# Installs crac on a Debian/Ubuntu machine and proves it works:
#   1. scripts/setup.sh: the C compiler, static libc, Python venv and nvcc that crac's builds
#      and tests use (apt-get and PyPI; skipped where already present);
#   2. a release build of the `crac` binary;
#   3. `crac` into ${PREFIX:-$HOME/.local}/bin, with the names crac_launch, crac_ckpt and
#      crac_restart linked to it (crac picks what to do from the name it was started by);
#   4. the "Python 3 (crac)" Jupyter kernel (crac_jupyter into lib/crac/python, and its
#      kernelspec when a Python with ipykernel is found);
#   5. a small C program run natively and under crac_launch, outputs compared; then the main
#      job: a program checkpointed while it runs (crac_ckpt), killed, and resumed from its
#      image (crac_restart), its final output compared with a run without crac.
# Usage: bash scripts/install.sh        (PREFIX=/usr/local bash scripts/install.sh for all users)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "install: $*" >&2; }
die() { say "$*"; exit 1; }

# rustup installs into ~/.cargo/bin, which a shell opened before the install does not have.
if ! command -v cargo >/dev/null 2>&1 && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    die "Rust is not installed. Install it with rustup (https://rustup.rs), e.g.
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
then open a new shell (or run: . \"\$HOME/.cargo/env\") and run this script again.
(Debian's own rustc package is too old: crac needs Rust 1.85 or newer.)"
fi
rust_minor="$(rustc --version | sed -n 's/^rustc 1\.\([0-9]*\).*/\1/p')"
if [ -n "$rust_minor" ] && [ "$rust_minor" -lt 85 ]; then
    die "$(rustc --version) is too old: crac needs Rust 1.85 or newer (rustup update stable)"
fi

say "installing prerequisites (scripts/setup.sh)"
bash scripts/setup.sh

say "building crac (release)"
cargo build --release --quiet -p crac
built="${CARGO_TARGET_DIR:-$PWD/target}/release/crac"
[ -x "$built" ] || die "the build did not produce $built"

bindir="${PREFIX:-$HOME/.local}/bin"
mkdir -p "$bindir"
# Copy then rename, so a crac that is running right now keeps its old file.
install -m 0755 "$built" "$bindir/.crac.new"
mv -f "$bindir/.crac.new" "$bindir/crac"
for name in crac_launch crac_ckpt crac_restart; do
    ln -sfn crac "$bindir/$name"
done
say "installed $bindir/crac and crac_launch, crac_ckpt, crac_restart"
bash scripts/build-libcrac.sh "${PREFIX:-$HOME/.local}/lib"
install -D -m 0644 include/crac.h "${PREFIX:-$HOME/.local}/include/crac.h"
say "installed libcrac.so and crac.h into ${PREFIX:-$HOME/.local}/lib and include (cc ... -lcrac)"
bash scripts/link-shim.sh release "${PREFIX:-$HOME/.local}/lib/crac" && say "installed the libcudart shim into ${PREFIX:-$HOME/.local}/lib/crac"
# The "Python 3 (crac)" Jupyter kernel: the crac_jupyter package goes to lib/crac/python (where
# `crac jupyter install` looks, beside bin/), and the kernelspec is written for the first Python
# that can run it: the one `jupyter` on PATH runs with, else python3.
pydir="${PREFIX:-$HOME/.local}/lib/crac/python"
rm -rf "$pydir/.crac_jupyter.new"
mkdir -p "$pydir"
cp -r python/crac_jupyter "$pydir/.crac_jupyter.new"
find "$pydir/.crac_jupyter.new" -name __pycache__ -prune -exec rm -rf {} +
rm -rf "$pydir/crac_jupyter"
mv "$pydir/.crac_jupyter.new" "$pydir/crac_jupyter"
jupyter_pythons=()
if command -v jupyter >/dev/null 2>&1; then
    shebang="$(head -n 1 "$(command -v jupyter)" 2>/dev/null | sed -n 's/^#! *\([^ ]*\).*/\1/p')"
    [ -z "$shebang" ] || jupyter_pythons+=("$shebang")
fi
command -v python3 >/dev/null 2>&1 && jupyter_pythons+=("$(command -v python3)")
kernel_done=""
for py in ${jupyter_pythons[@]+"${jupyter_pythons[@]}"}; do
    if "$py" -c 'import ipykernel, zmq, jupyter_client' >/dev/null 2>&1; then
        "$bindir/crac" jupyter install --user --python "$py" && kernel_done=1
        break
    fi
done
[ -n "$kernel_done" ] || say "no Python with Jupyter (ipykernel) found: skipped the \"Python 3 (crac)\" kernel; later: crac jupyter install --python PATH"

case ":$PATH:" in
    *":$bindir:"*) ;;
    *) say "WARNING: $bindir is not on your PATH; add it, e.g.:
    echo 'export PATH=\"$bindir:\$PATH\"' >> ~/.bashrc && . ~/.bashrc" ;;
esac

# --- prove it works ---------------------------------------------------------------------------
work="$(mktemp -d)"
example_pid=""
cleanup() {
    [ -z "$example_pid" ] || kill "$example_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cat > "$work/hello.c" <<'EOF'
#include <pthread.h>
#include <stdio.h>

static void *work(void *arg) {
    unsigned long *sum = arg;
    for (unsigned long i = 0; i < 1000000; i++) *sum += i % 7;
    return NULL;
}

int main(int argc, char **argv) {
    pthread_t t[4];
    unsigned long sums[4] = {0};
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, work, &sums[i]);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    printf("hello from crac: %d args, last [%s], 4 threads summed %lu\n", argc - 1,
           argv[argc - 1], sums[0] + sums[1] + sums[2] + sums[3]);
    return 0;
}
EOF
cc -O2 -pthread -o "$work/hello" "$work/hello.c"
native="$("$work/hello" one "two words")"
under="$("$bindir/crac_launch" -- "$work/hello" one "two words")" \
    || die "the example failed under crac_launch (exit $?)"
echo "native:            $native"
echo "under crac_launch: $under"
[ "$native" = "$under" ] || die "the example printed something else under crac"

# The main job: checkpoint a running program, kill it, and resume it from the image.
cat > "$work/count.c" <<'EOF'
#include <stdio.h>
#include <unistd.h>

int main(void) {
    unsigned long sum = 0;
    for (int i = 1; i <= 40; i++) {
        sum += (unsigned long)i * i;
        printf("step %d sum %lu\n", i, sum);
        fflush(stdout);
        usleep(50000);
    }
    return 0;
}
EOF
cc -O2 -o "$work/count" "$work/count.c"
"$bindir/crac_launch" -- "$work/count" > "$work/before.txt" &
example_pid=$!
for _ in $(seq 50); do
    status="$("$bindir/crac_ckpt" --status "$example_pid" 2>/dev/null)" && break
    sleep 0.1
done
[ -n "${status:-}" ] || die "crac_ckpt --status $example_pid did not answer: $("$bindir/crac_ckpt" --status "$example_pid" 2>&1 || true)"
echo "crac_ckpt --status of the example under crac:"
echo "$status" | sed -n '1,8p'
sleep 0.5
image="$("$bindir/crac_ckpt" --dir "$work" "$example_pid" | tail -n 1)" \
    || die "crac_ckpt $example_pid failed"
kill -9 "$example_pid" 2>/dev/null || true
wait "$example_pid" 2>/dev/null || true
example_pid=""
echo "checkpointed into $image, then killed the program after: $(tail -n 1 "$work/before.txt")"
"$bindir/crac_restart" "$image" > "$work/after.txt" || die "crac_restart $image failed"
echo "crac_restart resumed at: $(head -n 1 "$work/after.txt"); finished with: $(tail -n 1 "$work/after.txt")"
[ "$(tail -n 1 "$work/after.txt")" = "$("$work/count" | tail -n 1)" ] \
    || die "the restarted program did not finish as a run without crac does"
say "crac works. Try: crac_launch -- python3 -c 'print(42)', then crac_ckpt PID and crac_restart IMAGE"
