#!/usr/bin/env bash
# How fast a checkpoint drains device memory on a real GPU, against the GPU's own pinned
# device-to-host copy bandwidth measured in the same run (run by gpu-tests/run.sh after the
# checkpoint scenarios):
#
#   gpu-tests/drain.sh [OUT_DIR]   (default target/gpu-tests; env: MIB=4096 device memory to
#                                   hold, ROUNDS=3 checkpoints, DIR=image directory)
#
# OUT_DIR is what gpu-tests/run.sh built: programs/d2h_bandwidth and programs/gpu_ckpt_mem,
# and the crac binary with its libcudart shim next to it: release/ (preferred: a debug build
# understates the rate, and the script says so when it falls back to it) or bin/.
#   1. programs/d2h_bandwidth (gpu-tests/programs/d2h_bandwidth.cu) runs natively, without
#      crac: cudaMemcpy device-to-host of 256 MiB into cudaMallocHost memory, timed with
#      events; its best rate is the yardstick;
#   2. the image directory's own write rate (dd, bs=64M, fdatasync), to tell whether it bounds
#      the drain: the directory is /dev/shm when it has room (a checkpoint then measures the
#      device side, not a disk), else a temporary directory;
#   3. programs/gpu_ckpt_mem (bench/programs/gpu_ckpt_mem.cu) holding MIB MiB of device memory
#      under `crac launch --gpu cuda`, checkpointed ROUNDS times (the program goes on) with
#      CRAC_LOG=info, which logs "… of device memory, device drained in N ms, written in M ms":
#      the drain rate of a round is the image's device bytes (`crac inspect --json`) / M.
# It prints each rate and the ratio of the median round's drain rate to the pinned
# bandwidth with the target (>= 0.8). It fails (exit 1) only when something cannot run or be
# measured; a ratio below the target is printed as such, not failed. Without a GPU it says so
# and exits 0.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:-target/gpu-tests}"
MIB="${MIB:-4096}"
ROUNDS="${ROUNDS:-3}"
say() { echo "gpu-tests drain: $*"; }
die() { echo "gpu-tests drain: $*" >&2; exit 1; }

if ! ls /dev/nvidia0 >/dev/null 2>&1 && ! command -v nvidia-smi >/dev/null 2>&1; then
    say "no NVIDIA GPU on this machine (no /dev/nvidia0, no nvidia-smi); skipping"
    exit 0
fi

if [ -x "$out/release/crac" ]; then
    crac="$out/release/crac"
    build=release
elif [ -x "$out/bin/crac" ]; then
    crac="$out/bin/crac"
    build=debug
    say "no release build in $out/release: timing the debug build in $out/bin, whose drain rate is lower than a release build's"
else
    die "no crac in $out/release or $out/bin: run gpu-tests/run.sh (or run.sh --build-only on a build machine) first"
fi
for p in d2h_bandwidth gpu_ckpt_mem; do
    [ -x "$out/programs/$p" ] \
        || die "$out/programs/$p missing: run gpu-tests/run.sh (or run.sh --build-only on a build machine) first"
done
[[ "$MIB" =~ ^[0-9]+$ ]] && [[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] \
    || die "MIB and ROUNDS must be whole numbers (got MIB=$MIB ROUNDS=$ROUNDS)"

work="$(mktemp -d)"
pid=""
dir=""
cleanup() {
    if [ -n "$pid" ]; then kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
    [ -z "$dir" ] || rm -f "$dir"/gpu_ckpt_mem-*.crac "$dir"/gpu_ckpt_mem-*.crac.tmp "$dir/dd.drain"
    [ -n "${DIR:-}" ] || [ -z "$dir" ] || rm -rf "$dir"
    rm -rf "$work"
}
trap cleanup EXIT

free_mib() { df -Pm "$1" | awk 'NR == 2 { print $4 }'; }
mem_mib=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)

# The image directory: one image at a time (each removed before the next) and dd's file.
if [ -n "${DIR:-}" ]; then
    dir="$DIR"
    mkdir -p "$dir"
elif [ -d /dev/shm ] && [ -w /dev/shm ] && [ "$(free_mib /dev/shm)" -ge $(( MIB + 1024 )) ] \
    && [ "$mem_mib" -ge $(( 2 * MIB + 2048 )) ]; then
    dir="$(mktemp -d /dev/shm/crac-drain.XXXXXX)"
else
    dir="$work/images"
    mkdir -p "$dir"
fi

# Scale MIB down, saying so, to what the GPU, the image directory and memory hold.
fit=$(( $(free_mib "$dir") - 512 ))
gpu_free=$(nvidia-smi --query-gpu=memory.free --format=csv,noheader,nounits 2>/dev/null | head -n1 | tr -dc '0-9' || true)
[ -z "$gpu_free" ] || [ $(( gpu_free - 1024 )) -ge "$fit" ] || fit=$(( gpu_free - 1024 ))
[ $(( mem_mib / 2 )) -ge "$fit" ] || fit=$(( mem_mib / 2 ))
fit=$(( fit / 256 * 256 ))
if [ "$fit" -lt "$MIB" ]; then
    say "using $fit MiB instead of $MIB (free: ${gpu_free:-?} MiB on the GPU, $(free_mib "$dir") MiB in $dir, $mem_mib MiB of memory)"
    MIB=$fit
fi
[ "$MIB" -ge 512 ] || die "not enough room for a meaningful run ($MIB MiB)"

ns() { date +%s%N; }

# --- 1. the pinned device-to-host bandwidth, natively ----------------------------------------
"$out/programs/d2h_bandwidth" 256 8 >"$work/bw.out" 2>"$work/bw.err" \
    || die "d2h_bandwidth failed: $(cat "$work/bw.err" "$work/bw.out")"
bw=$(sed -n 's/^d2h pinned: best \([0-9]*\) MiB\/s.*/\1/p' "$work/bw.out")
[ -n "$bw" ] && [ "$bw" -gt 0 ] || die "d2h_bandwidth printed no rate: $(cat "$work/bw.out")"

# --- 2. the image directory's write rate -----------------------------------------------------
count=$(( MIB / 64 ))
t0=$(ns)
dd if=/dev/zero of="$dir/dd.drain" bs=64M count="$count" conv=fdatasync status=none \
    || die "dd into $dir failed"
t1=$(ns)
rm -f "$dir/dd.drain"
dd_rate=$(awk -v b=$(( count * 64 )) -v ns=$(( t1 - t0 )) 'BEGIN { printf "%.0f", b / (ns / 1e9) }')

# --- 3. the checkpoints ----------------------------------------------------------------------
# A gap of 10^6 ms: the program never takes a checkpoint's pause for a restart, and runs until
# it is killed.
"$crac" launch --gpu cuda -- "$out/programs/gpu_ckpt_mem" "$MIB" 1000000 \
    </dev/null >"$work/prog.out" 2>"$work/prog.err" &
pid=$!
for _ in $(seq 1200); do
    grep -q '^ready' "$work/prog.out" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
grep -q '^ready' "$work/prog.out" \
    || die "gpu_ckpt_mem did not get ready under crac launch --gpu cuda: $(cat "$work/prog.out" "$work/prog.err")"

# Checkpoints the program (it goes on) with crac ckpt's info log in $work/ckpt.err; prints the
# image's path.
checkpoint() { CRAC_LOG=info "$crac" ckpt --dir "$dir" "$pid" 2>"$work/ckpt.err" | tail -n1; }

rates=()
for round in $(seq "$ROUNDS"); do
    image="$(checkpoint)" && [ -f "$image" ] \
        || die "crac ckpt (round $round) failed: $(cat "$work/ckpt.err")"
    line=$(grep 'of device memory, device drained in' "$work/ckpt.err" | tail -n1 || true)
    [ -n "$line" ] || die "crac ckpt (round $round) logged no device split; its log: $(cat "$work/ckpt.err")"
    drain_ms=$(sed -n 's/.*device drained in \([0-9]*\) ms.*/\1/p' <<<"$line")
    write_ms=$(sed -n 's/.*device drained in [0-9]* ms, written in \([0-9]*\) ms.*/\1/p' <<<"$line")
    logged=$(sed -n 's/.*: \(.*\) of device memory,.*/\1/p' <<<"$line")
    bytes=$("$crac" inspect --json "$image" 2>/dev/null \
        | sed -n 's/^ *"device_bytes": \([0-9]*\),\{0,1\}$/\1/p' | head -n1 || true)
    if [ -z "$bytes" ]; then
        # The logged size ("4 GiB", "4.0 GiB"): one decimal, close enough.
        bytes=$(awk -v s="$logged" 'BEGIN {
            n = split(s, a, " "); m["B"] = 0; m["KiB"] = 1; m["MiB"] = 2; m["GiB"] = 3; m["TiB"] = 4
            if (n == 2 && a[2] in m) printf "%.0f", a[1] * 1024 ^ m[a[2]] }')
        say "crac inspect gave no device_bytes; using the logged size $logged"
    fi
    rm -f "$image"
    [ -n "$bytes" ] && [ -n "$write_ms" ] || die "cannot read the device bytes or time from: $line"
    [ "$write_ms" -gt 0 ] || die "round $round: device memory written in 0 ms: too little to time (raise MIB)"
    rate=$(awk -v b="$bytes" -v ms="$write_ms" 'BEGIN { printf "%.0f", b / 1048576 / (ms / 1000) }')
    say "round $round: $logged of device memory ($bytes bytes), drained (streams synchronized) in $drain_ms ms, written in $write_ms ms: $rate MiB/s"
    rates+=("$rate")
done
kill -9 "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
pid=""

median=$(printf '%s\n' "${rates[@]}" | sort -n | awk '{ r[NR] = $1 } END { print r[int((NR + 1) / 2)] }')
best=$(printf '%s\n' "${rates[@]}" | sort -n | tail -n1)
ratio=$(awk -v a="$median" -v b="$bw" 'BEGIN { printf "%.2f", a / b }')
verdict=$(awk -v r="$ratio" 'BEGIN { print (r >= 0.8) ? "meets the target" : "BELOW the target" }')

nvidia-smi --query-gpu=name,driver_version,pcie.link.gen.current,pcie.link.width.current \
    --format=csv,noheader 2>/dev/null | sed 's/^/gpu-tests drain: GPU: /' || true
say "crac build: $build ($crac); image directory: $dir ($(stat -f -c %T "$dir"))"
say "pinned device-to-host bandwidth (native, $(sed 's/^d2h pinned: //' "$work/bw.out"))"
say "image directory write rate (dd bs=64M, fdatasync): $dd_rate MiB/s"
say "device drain rate (device bytes / device write time, $MIB MiB, $ROUNDS rounds): median $median MiB/s, best $best MiB/s"
say "drain rate / pinned bandwidth = $median / $bw = $ratio (target >= 0.8): $verdict"
if awk -v d="$dd_rate" -v b="$bw" 'BEGIN { exit !(d < 0.8 * b) }'; then
    say "note: the image directory writes at $dd_rate MiB/s, below 0.8 of the pinned bandwidth: it may bound the drain rate (set DIR to a faster directory)"
fi
exit 0
