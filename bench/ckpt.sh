#!/usr/bin/env bash
# What a checkpoint and a restart cost, against this machine's own disk in the same run:
#   1. dd's sequential write throughput (bs=64M, conv=fdatasync) into the image directory;
#   2. a program holding MIB MiB of touched memory (bench/programs/ckpt_mem.c) checkpointed with
#      `crac_ckpt --exit`: image bytes / crac_ckpt's wall time, as a ratio of dd's throughput,
#      and how long the program was stopped (the agent's pause);
#   3. restart time to the program's first instruction, lazily (pages mapped from the image) and
#      with --eager (read in first): the program watches the clock in a loop and prints the
#      time it resumes; the script took the time just before starting crac_restart. Also the
#      time until the program has read all its memory once. The image was just written, so the
#      page cache is warm; a cold cache makes the lazy numbers grow with what the program reads.
# Usage: bash bench/ckpt.sh   (env: MIB=4096, DIR=directory for images (default: a temporary
#        directory under $TMPDIR), CRAC_BIN=crac binary to time instead of building one)
# Scales MIB down, saying so, when the directory's free space or the free memory is short.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB="${MIB:-4096}"

source bench/lib.sh
crac="$(crac_binary ckpt)"

work="$(mktemp -d)"
dir="${DIR:-$work/images}"
mkdir -p "$dir"
pid=""
cleanup() {
    [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true
    rm -rf "$work"
    [ -z "${DIR:-}" ] || rm -f "$dir"/ckpt_mem-*.crac "$dir"/ckpt_mem-*.crac.tmp "$dir/dd.bench"
}
trap cleanup EXIT
for n in crac_launch crac_ckpt crac_restart; do ln -s "$crac" "$work/$n"; done
cc -O2 -o "$work/ckpt_mem" bench/programs/ckpt_mem.c

# Room for dd's file and one image, with a margin; memory for the program plus the page cache.
MIB=$(room_mib ckpt "$MIB" "$dir" 2 1 64)

# --- 1. the disk ------------------------------------------------------------------------------
dd_rate=$(dd_rate "$dir" "$MIB")

# --- 2. the checkpoint ------------------------------------------------------------------------
# stdin stays open (a fifo nobody writes) so the program is not disturbed by an end of input.
# A checkpoint-and-exit never lets the first run go on, so only a restart shows it a jump.
mkfifo "$work/in"
exec 7<>"$work/in"
"$work/crac_launch" -- "$work/ckpt_mem" "$MIB" 1000 <&7 >"$work/first.out" 2>"$work/first.err" &
pid=$!
for _ in $(seq 600); do grep -q ready "$work/first.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/first.out" || { echo "ckpt bench: the program did not start: $(cat "$work/first.err")" >&2; exit 1; }
t0=$(ns)
image="$(CRAC_LOG=info "$work/crac_ckpt" --exit --dir "$dir" "$pid" 2>"$work/ckpt.err" | tail -n1)" \
    || { echo "ckpt bench: crac_ckpt failed: $(cat "$work/ckpt.err")" >&2; exit 1; }
t1=$(ns)
wait "$pid" || true
pid=""
image_bytes=$(stat -c %s "$image")
ckpt_rate=$(mbps "$image_bytes" $(( t1 - t0 )))
pause_ms=$(sed -n 's/.*paused \([0-9]*\) ms.*/\1/p' "$work/ckpt.err" | tail -n1)
write_ms=$(sed -n 's/.*written in \([0-9]*\) ms.*/\1/p' "$work/ckpt.err" | tail -n1)

echo "checkpoint of $MIB MiB of touched memory into $dir:"
echo "  dd sequential write (bs=64M, fdatasync)  $dd_rate MiB/s"
echo "  checkpoint (image bytes / crac_ckpt wall) $ckpt_rate MiB/s   ratio to dd $(awk -v a="$dd_rate" -v b="$ckpt_rate" 'BEGIN { printf "%.2f", b / a }')"
echo "  image $(( image_bytes / 1048576 )) MiB; program paused ${pause_ms:-?} ms (agent's image write ${write_ms:-?} ms)"

# --- 3. restarts ------------------------------------------------------------------------------
restart_once() {  # restart_once LABEL [--eager]
    local label="$1" t0 resumed touched
    shift
    sleep 1.1   # the program knows it was resumed by a clock jump of more than a second
    t0=$(ns)
    "$work/crac_restart" "$@" "$image" <&7 >"$work/r.out" 2>"$work/r.err" \
        || { echo "ckpt bench: crac_restart $* failed: $(cat "$work/r.err")" >&2; exit 1; }
    resumed=$(awk '/^resumed/ { print $2 }' "$work/r.out")
    touched=$(awk '/^touched/ { print $2 }' "$work/r.out")
    [ -n "$resumed" ] || { echo "ckpt bench: the restarted program printed no resume time: $(cat "$work/r.out" "$work/r.err")" >&2; exit 1; }
    echo "  $label: first instruction after $(ms $(( resumed - t0 ))) ms, all memory read after $(ms $(( touched - t0 ))) ms"
}
echo "restart of that image (page cache warm):"
restart_once "lazy   "
restart_once "--eager" --eager
