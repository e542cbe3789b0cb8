#!/usr/bin/env bash
# What launching under crac costs, measured against native runs in this same script run:
#   1. start-up: /bin/true run N times natively and N times under crac_launch (mean per run);
#   2. steady state: a CPU-bound C program (bench/programs/cpu.c, sized to about 3 s of CPU
#      natively) run natively and under crac alternately, R times each (mean of wall time and of
#      CPU time, user + system); the target ratio is <= 1.01. On a busy shared machine the wall
#      times are noisy; the CPU times show what crac itself costs.
# Usage: bash bench/launch.sh   (env: N=200 startup runs, R=3 CPU runs, CPU_SECONDS=3,
#        CRAC_BIN=path to time that crac binary instead of building one)
# Builds crac in release mode first. Prints ratios only from runs taken here, never fixed values.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-200}"
R="${R:-3}"
CPU_SECONDS="${CPU_SECONDS:-3}"

source bench/lib.sh
crac="$(crac_binary launch)"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
ln -s "$crac" "$work/crac_launch"
launch="$work/crac_launch"
cc -O2 -o "$work/cpu" bench/programs/cpu.c

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b / a }'; }

# Sanity: crac must run the program correctly before it is timed.
if ! out="$("$launch" -- /bin/echo crac-bench-ok 2>&1)" || [ "$out" != "crac-bench-ok" ]; then
    echo "launch bench: crac_launch does not run /bin/echo correctly: $out" >&2
    exit 1
fi

# Wall time is what a user waits; CPU time (user + system, from bash's `time`, children
# included) is what was consumed, and is the steadier number on a shared machine.
TIMEFORMAT='%3R %3U %3S'
timed() {  # timed OUTFILE CMD... -> "wall cpu" seconds on stdout, the command's stdout in OUTFILE
    local out="$1" t
    shift
    t="$( { time "$@" >"$out"; } 2>&1 )" || { echo "launch bench: $* failed" >&2; exit 1; }
    awk '{ printf "%s %.3f", $1, $2 + $3 }' <<<"$t"
}
repeat() { local n="$1" i; shift; for ((i = 0; i < n; i++)); do "$@"; done; }

# --- 1. start-up cost -------------------------------------------------------------------------
for _ in 1 2 3 4 5; do /bin/true; "$launch" -- /bin/true; done   # warm the page cache
read -r nw nc <<<"$(timed /dev/null repeat "$N" /bin/true)"
read -r cw cc <<<"$(timed /dev/null repeat "$N" "$launch" -- /bin/true)"
per_run() { awk -v t="$1" -v n="$N" 'BEGIN { printf "%.3f", t / n * 1000 }'; }
echo "startup /bin/true (mean of $N runs):"
echo "  wall time  native $(per_run "$nw") ms   crac $(per_run "$cw") ms   ratio $(ratio "$nw" "$cw")   overhead $(per_run "$(awk -v a="$nw" -v b="$cw" 'BEGIN { print b - a }')") ms"
echo "  CPU time   native $(per_run "$nc") ms   crac $(per_run "$cc") ms   ratio $(ratio "$nc" "$cc")   overhead $(per_run "$(awk -v a="$nc" -v b="$cc" 'BEGIN { print b - a }')") ms"

# --- 2. CPU-bound run time --------------------------------------------------------------------
read -r _ probe <<<"$(timed "$work/probe.out" "$work/cpu" 50)"
units=$(awk -v s="$probe" -v want="$CPU_SECONDS" 'BEGIN { u = int(50 * want / (s > 0 ? s : 0.001)); print (u < 1 ? 1 : u) }')
expected="$("$work/cpu" "$units")"
nw=0 nc=0 cw=0 cc=0
for ((r = 0; r < R; r++)); do
    read -r w c <<<"$(timed "$work/native.out" "$work/cpu" "$units")"
    [ "$(cat "$work/native.out")" = "$expected" ] || { echo "launch bench: native output changed" >&2; exit 1; }
    nw=$(awk -v a="$nw" -v b="$w" 'BEGIN { print a + b }'); nc=$(awk -v a="$nc" -v b="$c" 'BEGIN { print a + b }')
    read -r w c <<<"$(timed "$work/crac.out" "$launch" -- "$work/cpu" "$units")"
    [ "$(cat "$work/crac.out")" = "$expected" ] || { echo "launch bench: output under crac differs: $(cat "$work/crac.out") (native: $expected)" >&2; exit 1; }
    cw=$(awk -v a="$cw" -v b="$w" 'BEGIN { print a + b }'); cc=$(awk -v a="$cc" -v b="$c" 'BEGIN { print a + b }')
done
mean() { awk -v t="$1" -v n="$R" 'BEGIN { printf "%.3f", t / n }'; }
wall_ratio=$(ratio "$(mean "$nw")" "$(mean "$cw")")
cpu_ratio=$(ratio "$(mean "$nc")" "$(mean "$cc")")
verdict() { awk -v r="$1" 'BEGIN { print (r <= 1.01 ? "within" : "above") }'; }
echo "cpu-bound ($units units, mean of $R, runs alternated):"
echo "  wall time  native $(mean "$nw") s   crac $(mean "$cw") s   ratio $wall_ratio ($(verdict "$wall_ratio") the 1.01 target)"
echo "  CPU time   native $(mean "$nc") s   crac $(mean "$cc") s   ratio $cpu_ratio ($(verdict "$cpu_ratio") the 1.01 target)"
