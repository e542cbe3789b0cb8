#!/usr/bin/env bash
# What `%crac checkpoint` and `%crac resume` cost for a "Python 3 (crac)" kernel holding MIB MiB
# (default 1024) of Python objects: ten million ints in a list and 4 KiB bytes objects for the
# rest. Against this machine's own disk in the same run:
#   1. dd's sequential write throughput (bs=64M, conv=fdatasync) into the image directory;
#   2. the checkpoint cell's wall time (seen by the client: children check, image, sidecar,
#      `crac inspect --verify`), the image's size and the agent's pause and write times, and
#      the image bytes per second of the cell as a ratio of dd's throughput;
#   3. after SIGKILL of the kernel and its relay, a new session's `%crac resume` cell's wall
#      time (the old kernel killed, `crac restart --same-pid`, sockets reconnected), then a cell
#      reading every object once (pages come in from the image as they are touched).
# Usage: bash bench/jupyter.sh   (env: MIB=1024, CRAC_BIN=crac binary to time instead of a
#        release build, DIR=image directory (default: a temporary one))
set -euo pipefail
cd "$(dirname "$0")/.."
MIB="${MIB:-1024}"

source bench/lib.sh
crac="$(crac_binary jupyter)"
python="${CRAC_TOOLS:-$HOME/.cache/crac-tools}/jupyter/bin/python"
[ -x "$python" ] || { echo "jupyter bench: no $python; run scripts/setup.sh" >&2; exit 1; }

work="$(mktemp -d)"
dir="${DIR:-$work/images}"
mkdir -p "$dir"
trap 'rm -rf "$work"; [ -z "${DIR:-}" ] || rm -f "$dir"/bench-jupyter.crac*' EXIT

MIB=$(room_mib jupyter "$MIB" "$dir" 3 1 512)

dd_rate=$(dd_rate "$dir" "$MIB")

JUPYTER_DATA_DIR="$work/data" CRAC_JUPYTER_PYTHONPATH="$PWD/python" \
    "$crac" jupyter install --python "$python" >/dev/null
JUPYTER_DATA_DIR="$work/data" JUPYTER_PATH="$work/data" CRAC_JUPYTER_DIR="$dir" \
MIB="$MIB" DD_RATE="$dd_rate" "$python" - <<'PY'
import os, re, signal, time
from jupyter_client import KernelManager

mib = int(os.environ["MIB"])
dd_rate = float(os.environ["DD_RATE"])


def session():
    km = KernelManager(kernel_name="python3-crac")
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=120)
    return km, kc


def run(kc, code):
    text = []
    t0 = time.monotonic()
    reply = kc.execute_interactive(
        code, timeout=1800,
        output_hook=lambda m: text.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None,
    )
    took = time.monotonic() - t0
    out = "".join(text)
    if reply["content"]["status"] != "ok":
        raise SystemExit(f"jupyter bench: {code!r} failed: {out} {reply['content'].get('evalue', '')}")
    return took, out


def tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for t in os.listdir(f"/proc/{p}/task"):
            with open(f"/proc/{p}/task/{t}/children") as f:
                todo += [int(x) for x in f.read().split()]
    return out


km, kc = session()
build_s, _ = run(kc, f"""
import os
small = [i * 3 for i in range(10_000_000)]
left = {mib} * 1048576 - 10_000_000 * 36
blobs = [bytes([i % 251]) * 4096 for i in range(max(left, 0) // 4129)]
""")
_, rss = run(kc, "print(int(open('/proc/self/status').read().split('VmRSS:')[1].split()[0]) // 1024)")
ckpt_s, out = run(kc, "%crac checkpoint bench-jupyter")
image = os.path.join(os.environ["CRAC_JUPYTER_DIR"], "bench-jupyter.crac")
size = os.path.getsize(image)
pause = re.search(r"paused (\d+) ms", out)
write = re.search(r"written in (\d+) ms", out)
verify = re.search(r"verified in ([0-9.]+) s", out)
for p in tree(km.provisioner.process.pid):
    os.kill(p, signal.SIGKILL)
kc.stop_channels()

km2, kc2 = session()
resume_s, out = run(kc2, "%crac resume bench-jupyter")
if "resumed from" not in out:
    raise SystemExit(f"jupyter bench: the resume cell did not resume: {out}")
touch_s, _ = run(kc2, "n = sum(len(b) for b in blobs) + sum(small[::1000])")
km2.shutdown_kernel(now=True)

rate = size / 1048576 / ckpt_s
print(f"kernel holding {mib} MiB of Python objects (RSS {rss.strip()} MiB; built in {build_s:.1f} s):")
print(f"  dd sequential write (bs=64M, fdatasync)   {dd_rate:.0f} MiB/s")
print(f"  %crac checkpoint cell                     {ckpt_s:.2f} s for a {size / 1048576:.0f} MiB image: "
      f"{rate:.0f} MiB/s, ratio to dd {rate / dd_rate:.2f}")
print(f"    kernel paused {pause.group(1) if pause else '?'} ms, image written in {write.group(1) if write else '?'} ms, "
      f"verified in {verify.group(1) if verify else '?'} s")
print(f"  %crac resume cell (new session)           {resume_s:.2f} s")
print(f"  then reading every object once            {touch_s:.2f} s")
PY
