#!/usr/bin/env bash
# What a CUDA-aware checkpoint and restart cost on the sim device, against this machine's own
# disk in the same run:
#   1. dd's sequential write throughput (bs=64M, conv=fdatasync) into the image directory;
#   2. a program holding MIB MiB of device memory (bench/programs/gpu_ckpt_mem.cu: 256 MiB
#      allocations filled by cudaMemset and stamped by a kernel) under `crac_launch --gpu sim`,
#      checkpointed with `crac_ckpt --exit`: crac_ckpt's wall time, split as the agent reports
#      it into the device drain (CUDA calls held, every stream finished), the device memory
#      streamed into the image (the program still running, its CUDA calls held) and the pause
#      (threads stopped while the CPU side is written); image bytes / wall time as a ratio of
#      dd's throughput;
#   3. restart time: from just before `crac_restart` until the program, watching the clock in a
#      loop, prints that it resumed (device memory is already back then: the restart copies it
#      before any thread runs), and until it has read its pattern words back from the device.
# Usage: bash bench/gpu-ckpt.sh   (env: MIB=4096, DIR=directory for images (default: a
#        temporary directory under $TMPDIR), CRAC_BIN=crac binary to time instead of building
#        one (its libcudart shim must be in crac-shim/ next to it, as scripts/link-shim.sh puts
#        it), CRAC_NVCC=nvcc to build the program with)
# Scales MIB down, saying so, when the directory's free space or the free memory is short.
set -euo pipefail
cd "$(dirname "$0")/.."
MIB="${MIB:-4096}"

source bench/lib.sh
if [ -z "${CRAC_BIN:-}" ]; then
    crac="$(crac_binary gpu-ckpt)"
    bash scripts/link-shim.sh release >/dev/null
else
    crac="$CRAC_BIN"
fi
[ -f "$(dirname "$crac")/crac-shim/libcudart.so.13" ] \
    || { echo "gpu-ckpt bench: no libcudart shim next to $crac: run bash scripts/link-shim.sh" >&2; exit 1; }
nvcc="${CRAC_NVCC:-$(cat "${CRAC_TOOLS:-$HOME/.cache/crac-tools}/nvcc-path" 2>/dev/null || true)}"
[ -n "$nvcc" ] && [ -x "$nvcc" ] \
    || { echo "gpu-ckpt bench: nvcc not found: run bash scripts/setup.sh (or set CRAC_NVCC)" >&2; exit 1; }

work="$(mktemp -d)"
dir="${DIR:-$work/images}"
mkdir -p "$dir"
pid=""
cleanup() {
    [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null || true
    rm -rf "$work"
    [ -z "${DIR:-}" ] || rm -f "$dir"/gpu_ckpt_mem-*.crac "$dir"/gpu_ckpt_mem-*.crac.tmp "$dir/dd.bench"
}
trap cleanup EXIT
for n in crac_launch crac_ckpt crac_restart; do ln -s "$crac" "$work/$n"; done
"$nvcc" -cudart shared -arch=compute_80 -code=compute_80 -O2 \
    -L"$(dirname "$(dirname "$nvcc")")/lib" -o "$work/gpu_ckpt_mem" bench/programs/gpu_ckpt_mem.cu

# Room for dd's file and one image, with a margin; memory for the sim's device memory, the
# restarted copy of it and the page cache.
MIB=$(room_mib gpu-ckpt "$MIB" "$dir" 3 256 256)

# --- 1. the disk ------------------------------------------------------------------------------
dd_rate=$(dd_rate "$dir" "$MIB")

# --- 2. the checkpoint ------------------------------------------------------------------------
# stdin stays open (a fifo nobody writes) so the program is not disturbed by an end of input;
# the program gets it only as stdin (crac does not checkpoint a read-write fifo elsewhere).
mkfifo "$work/in"
exec 7<>"$work/in"
t0=$(ns)
"$work/crac_launch" --gpu sim -- "$work/gpu_ckpt_mem" "$MIB" 1000 <&7 7<&- >"$work/first.out" 2>"$work/first.err" &
pid=$!
for _ in $(seq 1200); do grep -q ready "$work/first.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/first.out" || { echo "gpu-ckpt bench: the program did not get ready: $(cat "$work/first.err")" >&2; exit 1; }
t1=$(ns)
setup_ms=$(ms $(( t1 - t0 )))
t0=$(ns)
image="$(CRAC_LOG=info "$work/crac_ckpt" --exit --dir "$dir" "$pid" 2>"$work/ckpt.err" | tail -n1)" \
    || { echo "gpu-ckpt bench: crac_ckpt failed: $(cat "$work/ckpt.err")" >&2; exit 1; }
t1=$(ns)
wait "$pid" || true
pid=""
ckpt_ms=$(ms $(( t1 - t0 )))
image_bytes=$(stat -c %s "$image")
ckpt_rate=$(mbps "$image_bytes" $(( t1 - t0 )))
pause_ms=$(sed -n 's/.*paused \([0-9]*\) ms.*/\1/p' "$work/ckpt.err" | tail -n1)
write_ms=$(sed -n 's/.*memory, paused [0-9]* ms, written in \([0-9]*\) ms.*/\1/p' "$work/ckpt.err" | tail -n1)
drain_ms=$(sed -n 's/.*device drained in \([0-9]*\) ms.*/\1/p' "$work/ckpt.err" | tail -n1)
device_ms=$(sed -n 's/.*device drained in [0-9]* ms, written in \([0-9]*\) ms.*/\1/p' "$work/ckpt.err" | tail -n1)
device_size=$(sed -n 's/.*: \(.*\) of device memory,.*/\1/p' "$work/ckpt.err" | tail -n1)

echo "checkpoint of a program holding $MIB MiB of sim device memory (set up in $setup_ms ms) into $dir:"
echo "  dd sequential write (bs=64M, fdatasync)    $dd_rate MiB/s"
echo "  checkpoint (image bytes / crac_ckpt wall)  $ckpt_rate MiB/s   ratio to dd $(awk -v a="$dd_rate" -v b="$ckpt_rate" 'BEGIN { printf "%.2f", b / a }')"
echo "  crac_ckpt wall $ckpt_ms ms = device drain ${drain_ms:-?} ms + device memory written ${device_ms:-?} ms (program running, its CUDA calls held) + program paused ${pause_ms:-?} ms + the rest (image write ${write_ms:-?} ms in all)"
echo "  image $(( image_bytes / 1048576 )) MiB (device memory ${device_size:-?})"
if [ -z "$drain_ms" ]; then
    echo "  (crac_ckpt reported no device split; its log:)"
    sed 's/^/    /' "$work/ckpt.err"
fi

# --- 3. the restart ---------------------------------------------------------------------------
sleep 1.1   # the program knows it was resumed by a clock jump of more than a second
t0=$(ns)
"$work/crac_restart" "$image" <&7 7<&- >"$work/r.out" 2>"$work/r.err" \
    || { echo "gpu-ckpt bench: crac_restart failed: $(cat "$work/r.err")" >&2; exit 1; }
resumed=$(awk '/^resumed/ { print $2 }' "$work/r.out")
checked=$(awk '/^device/ { print $2 }' "$work/r.out")
verdict=$(awk '/^device/ { print $3 }' "$work/r.out")
[ -n "$resumed" ] || { echo "gpu-ckpt bench: the restarted program printed no resume time: $(cat "$work/r.out" "$work/r.err")" >&2; exit 1; }
echo "restart of that image (page cache warm):"
echo "  program running again after $(ms $(( resumed - t0 ))) ms (device memory copied back by then); pattern read back from the device after $(ms $(( checked - t0 ))) ms: ${verdict:-?}"
[ "$verdict" = ok ] || { echo "gpu-ckpt bench: the restarted program's device memory is wrong" >&2; exit 1; }
