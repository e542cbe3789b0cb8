# Shared by the bench scripts (sourced, not run).

# Prints the crac binary to time: $CRAC_BIN when set, else a release build made now.
# $1 names the bench for the error message.
crac_binary() {
    local crac
    if [ -n "${CRAC_BIN:-}" ]; then
        crac="$CRAC_BIN"
    else
        echo "building crac (release)..." >&2
        cargo build --release --quiet -p crac
        crac="${CARGO_TARGET_DIR:-$PWD/target}/release/crac"
    fi
    [ -x "$crac" ] || { echo "$1 bench: $crac missing after the build" >&2; return 1; }
    printf '%s\n' "$crac"
}

# Nanoseconds since the epoch; MiB/s of $1 bytes in $2 ns; $1 ns as whole milliseconds.
ns() { date +%s%N; }
mbps() { awk -v b="$1" -v ns="$2" 'BEGIN { printf "%.0f", b / 1048576 / (ns / 1e9) }'; }
ms() { awk -v ns="$1" 'BEGIN { printf "%.0f", ns / 1e6 }'; }

# Prints dd's sequential write throughput in MiB/s for $2 MiB (rounded up to 64 MiB blocks,
# fdatasync at the end) into directory $1: the reference a checkpoint's write is compared with.
dd_rate() {
    local count t0 t1
    count=$(( ($2 + 63) / 64 ))
    t0=$(ns)
    dd if=/dev/zero of="$1/dd.bench" bs=64M count="$count" conv=fdatasync status=none
    t1=$(ns)
    rm -f "$1/dd.bench"
    mbps $(( count * 64 * 1048576 )) $(( t1 - t0 ))
}

# Prints the MiB a bench may use: $2 (asked), scaled down (saying so on stderr) to a third of
# the free space in directory $3 (dd's file and one image, with a margin) and to available
# memory divided by $4, rounded down to a multiple of $5 MiB; fails when that is under $6.
# $1 names the bench for the messages.
room_mib() {
    local name=$1 mib=$2 dir=$3 mem_div=$4 round=$5 min=$6 avail mem fit
    avail=$(df -Pm "$dir" | awk 'NR == 2 { print $4 }')
    mem=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
    fit=$(( avail / 3 ))
    [ $(( mem / mem_div )) -lt "$fit" ] && fit=$(( mem / mem_div ))
    fit=$(( fit / round * round ))
    if [ "$fit" -lt "$mib" ]; then
        echo "$name bench: only $avail MiB free in $dir and $mem MiB of memory available; using $fit MiB instead of $mib" >&2
        mib=$fit
    fi
    [ "$mib" -ge "$min" ] || { echo "$name bench: not enough room for a meaningful run ($mib MiB)" >&2; return 1; }
    printf '%s\n' "$mib"
}
