#!/usr/bin/env bash
# CUDA-aware checkpoint scenarios on a real GPU (run by gpu-tests/run.sh after it built or found
# crac and the programs):
#
#   gpu-tests/ckpt.sh OUT_DIR     (OUT_DIR holds bin/crac and programs/ckpt_*; env GPU=cuda|sim)
#
# The same scenarios as tests/tests/gpu_ckpt.rs, over the ckpt_* programs of
# tests/cuda/programs/ (each waits for a line on stdin before it prints its results): launched
# under `crac launch --gpu $GPU`, checkpointed at a random moment after its ready line, killed
# with SIGKILL and restarted with "go" on stdin, the restarted run must print the rest of
# tests/cuda/programs/<name>.expected; restart -> checkpoint -> restart three times;
# twenty checkpoints while the program goes on; and with GPU=cuda, an image taken on the GPU
# restarted on `--gpu sim` (its fat binaries carry PTX). GPU=sim runs it all on the sim device
# (no GPU needed), which checks this script itself.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${1:?usage: gpu-tests/ckpt.sh OUT_DIR}"
gpu="${GPU:-cuda}"
crac="$out/bin/crac"
expected=tests/cuda/programs
say() { echo "gpu-tests ckpt ($gpu): $*"; }
status=0
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# A random number of milliseconds below $1, as seconds for sleep.
random_sleep() { sleep "$(awk -v max="$1" -v r="$RANDOM" 'BEGIN { printf "%.3f", (r % max) / 1000 }')"; }

# Waits (at most 120 s) until file $1 has a line starting with $2.
wait_line() {
    for _ in $(seq 1200); do
        grep -q "^$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# Starts `crac ARGS…` in the background with stdin a fifo ($1.in) that stays open and empty
# until something is written to it, stdout to $1, stderr to $1.err; sets $started to its pid.
start() {
    local log="$1"
    shift
    local fifo="$log.in"
    mkfifo "$fifo"
    # Opened read-write, so the open does not wait for a writer and the program never sees an
    # end of input; nothing else holds the fifo.
    "$crac" "$@" <>"$fifo" >"$log" 2>"$log.err" &
    started=$!
    pids+=("$started")
}

# Checkpoints pid $1 into $2 and prints the image path; fails with crac ckpt's message.
checkpoint() {
    "$crac" ckpt --dir "$2" "$1" 2>"$2/ckpt.err" | tail -n1
    [ "${PIPESTATUS[0]}" -eq 0 ] || { cat "$2/ckpt.err" >&2; return 1; }
}

# Kills pid $1 with SIGKILL and reaps it.
kill9() { kill -9 "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# Compares file $2 with the expected output of program $1 after its first $3 lines.
same_after() {
    if diff -u <(tail -n +"$(( $3 + 1 ))" "$expected/$1.expected") "$2" >"$2.diff"; then
        return 0
    fi
    cat "$2.diff" >&2
    [ ! -f "$2.err" ] || cat "$2.err" >&2
    return 1
}

# One interrupted run: NAME READY_LINE MAX_DELAY_MS.
interrupted() {
    local name="$1" ready="$2" max="$3" d="$work/$1"
    mkdir -p "$d"
    start "$d/first.out" launch --gpu "$gpu" -- "$out/programs/$name"
    local pid="$started" image
    wait_line "$d/first.out" "$ready" || { cat "$d/first.out.err" >&2; return 1; }
    random_sleep "$max"
    image="$(checkpoint "$pid" "$d")" || return 1
    kill9 "$pid"
    local before
    before=$(wc -l <"$d/first.out")
    echo go | "$crac" restart "$image" >"$d/restarted.out" 2>"$d/restarted.out.err" || true
    same_after "$name" "$d/restarted.out" "$before" || return 1
    echo "$image" >"$d/image"
}

check() {  # check LABEL COMMAND…: runs it and reports
    local label="$1"
    shift
    if "$@"; then
        say "$label: ok"
    else
        say "$label: FAILED"
        status=1
    fi
}

check "stencil over two streams with events" interrupted ckpt_stencil "stencil: ready" 2500
check "kernels queued on three streams" interrupted ckpt_queued "queued" 200
check "four host threads with their own streams" interrupted ckpt_threads "threads: ready" 2000
check "10^5 alloc/free cycles" interrupted ckpt_realloc "realloc: ready" 700
check "__device__ counters and __constant__ tables" interrupted ckpt_symbols "symbols: ready" 1500
check "pinned buffers with async copies" interrupted ckpt_pinned "pinned: ready" 2000

chain() {
    local d="$work/chain" pid image
    mkdir -p "$d"
    start "$d/run0.out" launch --gpu "$gpu" -- "$out/programs/ckpt_stencil"
    pid="$started"
    wait_line "$d/run0.out" "stencil: ready" || return 1
    for round in 1 2 3; do
        sleep 0.3
        random_sleep 1000
        image="$(checkpoint "$pid" "$d")" || return 1
        kill9 "$pid"
        if [ "$round" -lt 3 ]; then
            start "$d/run$round.out" restart "$image"
            pid="$started"
        fi
    done
    echo go | "$crac" restart "$image" >"$d/last.out" 2>"$d/last.out.err" || true
    same_after ckpt_stencil "$d/last.out" 1
}
check "restart -> checkpoint -> restart three times" chain

continued() {
    local d="$work/continued" pid image
    mkdir -p "$d"
    start "$d/run.out" launch --gpu "$gpu" -- "$out/programs/ckpt_stencil"
    pid="$started"
    wait_line "$d/run.out" "stencil: ready" || return 1
    for _ in $(seq 20); do image="$(checkpoint "$pid" "$d")" || return 1; done
    echo go >"$d/run.out.in"
    wait "$pid" || { cat "$d/run.out.err" >&2; return 1; }
    same_after ckpt_stencil "$d/run.out" 0 || return 1
    [ "$(ls "$d"/*.crac | wc -l)" -eq 20 ] || { echo "not 20 images" >&2; return 1; }
    echo go | "$crac" restart "$image" >"$d/last.out" 2>"$d/last.out.err" || true
    same_after ckpt_stencil "$d/last.out" 1
}
check "twenty checkpoints while the program goes on" continued

if [ "$gpu" = cuda ]; then
    cross() {
        local image
        image="$(cat "$work/ckpt_stencil/image")"
        echo go | "$crac" restart --gpu sim "$image" >"$work/cross.out" 2>"$work/cross.out.err" || true
        same_after ckpt_stencil "$work/cross.out" 1
    }
    check "an image taken on the GPU restarts on --gpu sim" cross
fi
exit $status
