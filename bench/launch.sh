#!/usr/bin/env bash
# What launching under crac costs, measured against native runs in this same script run:
#   1. start-up: /bin/true run N times natively and N times under crac_launch (mean per run);
#   2. steady state: a CPU-bound C program (bench/programs/cpu.c, sized to about 3 s natively)
#      run natively and under crac alternately, R times each (mean); the target ratio is <= 1.01.
# Usage: bash bench/launch.sh   (env: N=200 startup runs, R=3 CPU runs, CPU_SECONDS=3,
#        CRAC_BIN=path to time that crac binary instead of building one)
# Builds crac in release mode first. Prints ratios only from runs taken here, never fixed values.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-200}"
R="${R:-3}"
CPU_SECONDS="${CPU_SECONDS:-3}"

if [ -n "${CRAC_BIN:-}" ]; then
    crac="$CRAC_BIN"
else
    echo "building crac (release)..." >&2
    cargo build --release --quiet -p crac
    crac="${CARGO_TARGET_DIR:-$PWD/target}/release/crac"
fi
[ -x "$crac" ] || { echo "launch bench: $crac missing after the build" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ln -s "$crac" "$work/crac_launch"
launch="$work/crac_launch"
cc -O2 -o "$work/cpu" bench/programs/cpu.c

now_ns() { date +%s%N; }

# mean_ms NS RUNS -> milliseconds with 3 decimals
mean_ms() { awk -v ns="$1" -v n="$2" 'BEGIN { printf "%.3f", ns / n / 1e6 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b / a }'; }

# Sanity: crac must run the program correctly before it is timed.
if ! out="$("$launch" -- /bin/echo crac-bench-ok 2>&1)" || [ "$out" != "crac-bench-ok" ]; then
    echo "launch bench: crac_launch does not run /bin/echo correctly: $out" >&2
    exit 1
fi

# --- 1. start-up cost -------------------------------------------------------------------------
for _ in 1 2 3 4 5; do /bin/true; "$launch" -- /bin/true; done   # warm the page cache
t0=$(now_ns); for ((i = 0; i < N; i++)); do /bin/true; done; t1=$(now_ns)
for ((i = 0; i < N; i++)); do "$launch" -- /bin/true; done; t2=$(now_ns)
native_ms=$(mean_ms $((t1 - t0)) "$N")
crac_ms=$(mean_ms $((t2 - t1)) "$N")
echo "startup /bin/true (mean of $N):  native ${native_ms} ms   crac ${crac_ms} ms   ratio $(ratio "$native_ms" "$crac_ms")   overhead $(awk -v a="$native_ms" -v b="$crac_ms" 'BEGIN { printf "%.3f", b - a }') ms"

# --- 2. CPU-bound run time --------------------------------------------------------------------
t0=$(now_ns); "$work/cpu" 50 >/dev/null; t1=$(now_ns)
units=$(awk -v ns=$((t1 - t0)) -v s="$CPU_SECONDS" 'BEGIN { u = int(50 * s * 1e9 / ns); print (u < 1 ? 1 : u) }')
expected="$("$work/cpu" "$units")"
native_total=0
crac_total=0
for ((r = 0; r < R; r++)); do
    t0=$(now_ns); got="$("$work/cpu" "$units")"; t1=$(now_ns)
    [ "$got" = "$expected" ] || { echo "launch bench: native output changed: $got" >&2; exit 1; }
    got="$("$launch" -- "$work/cpu" "$units")"; t2=$(now_ns)
    [ "$got" = "$expected" ] || { echo "launch bench: output under crac differs: $got (native: $expected)" >&2; exit 1; }
    native_total=$((native_total + t1 - t0))
    crac_total=$((crac_total + t2 - t1))
done
native_s=$(awk -v ns="$native_total" -v n="$R" 'BEGIN { printf "%.3f", ns / n / 1e9 }')
crac_s=$(awk -v ns="$crac_total" -v n="$R" 'BEGIN { printf "%.3f", ns / n / 1e9 }')
cpu_ratio=$(ratio "$native_s" "$crac_s")
verdict=$(awk -v r="$cpu_ratio" 'BEGIN { print (r <= 1.01 ? "within" : "above") }')
echo "cpu-bound ($units units, mean of $R):  native ${native_s} s   crac ${crac_s} s   ratio ${cpu_ratio} ($verdict the 1.01 target)"
