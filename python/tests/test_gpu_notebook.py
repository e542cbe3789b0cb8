"""GPU state in a notebook on the ``sim`` backend: a kernel from ``crac jupyter install --gpu sim``
loads a small CUDA library (``cuda/devbuf.cu``, built here with nvcc against the shared runtime)
through ctypes, fills device memory with a CUDA kernel, checkpoints, is killed, and resumes in a
new session: the device bytes, the library's ``__device__`` counter and its host-side statics
come back, and the kernel goes on computing exactly as the uninterrupted one did; likewise for
a second generation resumed from a plain "Python 3 (crac)" session, and for a checkpoint signal
that arrives while a cell runs kernel after kernel.

nvcc is ``$CRAC_NVCC``, else the path ``scripts/setup.sh`` recorded in ``$CRAC_TOOLS/nvcc-path``
(default ``~/.cache/crac-tools``), as for the Rust GPU tests. The shim libraries must be next to
crac (``scripts/link-shim.sh``; ``scripts/test.sh`` runs it).
"""

from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, crac_bin

HERE = Path(__file__).resolve().parent
GPU_KERNEL = "python3-crac-sim"
MIB = 1 << 20
M32 = 0xFFFFFFFF

# The notebook's first cell: the library's prototypes and three helpers (PATH is set before it).
SETUP = """
import ctypes
lib = ctypes.CDLL(PATH)
lib.devbuf_fill.argtypes = [ctypes.c_ulonglong, ctypes.c_uint]
lib.devbuf_read.argtypes = [ctypes.c_int, ctypes.c_ulonglong, ctypes.c_void_p, ctypes.c_ulonglong]
for name in ("checksum", "launches", "address", "size"):
    getattr(lib, "devbuf_" + name).restype = ctypes.c_ulonglong
lib.devbuf_error.restype = ctypes.c_char_p

def fill(n, seed):
    assert lib.devbuf_fill(n, seed) == 0, lib.devbuf_error().decode()

def words(k, first, n):
    buf = (ctypes.c_uint32 * (4 * n))()
    assert lib.devbuf_read(k, 16 * first, buf, 16 * n) == 0, lib.devbuf_error().decode()
    return [tuple(buf[4 * j:4 * j + 4]) for j in range(n)]

def state():
    print(lib.devbuf_count(), lib.devbuf_launches(), hex(lib.devbuf_checksum()),
          lib.devbuf_error().decode() or "no error")
"""


def nvcc() -> Path:
    if os.environ.get("CRAC_NVCC"):
        path = Path(os.environ["CRAC_NVCC"])
    else:
        tools = Path(os.environ.get("CRAC_TOOLS") or Path.home() / ".cache" / "crac-tools")
        try:
            path = Path((tools / "nvcc-path").read_text().strip())
        except OSError:
            pytest.fail(f"nvcc not found: run scripts/setup.sh (no {tools / 'nvcc-path'}) or set CRAC_NVCC")
    if not path.is_file():
        pytest.fail(f"nvcc not found: run scripts/setup.sh ({path} does not exist)")
    return path


def check_shim() -> None:
    """Fails with the remedy when crac has no CUDA 13 shim to preload into the kernel (without it
    the library's libcudart.so.13 is not found, and ctypes says only that)."""
    crac = Path(crac_bin()).resolve()
    dirs = [Path(os.environ["CRAC_SHIM_DIR"])] if os.environ.get("CRAC_SHIM_DIR") else []
    dirs += [crac.parent / "crac-shim", crac.parent.parent / "lib" / "crac"]
    if not any((d / "libcudart.so.13").is_file() for d in dirs):
        pytest.fail(f"no libcudart.so.13 shim in {', '.join(map(str, dirs))}: run scripts/link-shim.sh")


@pytest.fixture(scope="module")
def devbuf(tmp_path_factory) -> Path:
    """libdevbuf.so, built from cuda/devbuf.cu: PTX only (the sim device runs PTX), linked against
    the shared CUDA runtime (what crac's shim stands in for)."""
    check_shim()
    src = HERE / "cuda" / "devbuf.cu"
    out = tmp_path_factory.mktemp("devbuf") / "libdevbuf.so"
    compiler = nvcc()
    lib = compiler.parent.parent / "lib"  # the runtime wheel's libcudart.so, for the link
    build = subprocess.run(
        [str(compiler), "-arch=compute_80", "-code=compute_80", "-O2", "-cudart", "shared",
         "-shared", "-Xcompiler", "-fPIC", f"-L{lib}", "-o", str(out), str(src)],
        capture_output=True, text=True,
    )
    assert build.returncode == 0, f"nvcc failed on {src}:\n{build.stdout}{build.stderr}"
    return out


@pytest.fixture
def gpu_kernel(jupyter_home) -> str:
    """The "Python 3 (crac, GPU sim)" kernelspec, written by ``crac jupyter install --gpu sim``
    beside the plain one."""
    env = dict(os.environ, CRAC_JUPYTER_PYTHONPATH=str(REPO / "python"))
    out = subprocess.run(
        [crac_bin(), "jupyter", "install", "--gpu", "sim", "--python", sys.executable],
        env=env, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    assert "Python 3 (crac, GPU sim)" in out.stdout
    spec = json.loads((jupyter_home["data"] / "kernels" / GPU_KERNEL / "kernel.json").read_text())
    assert spec["display_name"] == "Python 3 (crac, GPU sim)"
    assert spec["env"]["CRAC_JUPYTER_LAUNCH_ARGS"] == "--gpu sim"
    assert (jupyter_home["data"] / "kernels" / "python3-crac" / "kernel.json").is_file()
    return GPU_KERNEL


def pattern(i: int, seed: int) -> tuple[int, int, int, int]:
    """Word i of a buffer filled with seed (devbuf.cu's formula), before the XOR with the
    previous buffer."""
    x = ((i * 2654435761) & M32) ^ seed
    return (x, (x * 1664525 + 1013904223) & M32, ~x & M32, x ^ 0x9E3779B9)


def xor(a: tuple, b: tuple) -> tuple:
    return tuple(p ^ q for p, q in zip(a, b))


def inspect_cuda(image: Path) -> dict:
    out = subprocess.run([crac_bin(), "inspect", "--json", str(image)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    cuda = json.loads(out.stdout).get("cuda")
    assert isinstance(cuda, dict), f"{image} has no CUDA section:\n{out.stdout}"
    return cuda


def allocations(cuda: dict) -> list[tuple[int, int]]:
    return [(o.get("id"), o.get("size")) for o in cuda.get("objects", []) if o.get("kind") == "allocation"]


def test_device_memory_filled_through_ctypes_comes_back_in_a_new_session(
    session, jupyter_home, gpu_kernel, devbuf
):
    first_size, second_size = 64 * MIB, 8 * MIB
    last = first_size // 16 - 1
    a = session(gpu_kernel)
    a.ok(f"PATH = {str(devbuf)!r}\n{SETUP}")
    a.ok(f"fill({first_size}, 1)", timeout=300)
    before = a.ok("state()").split()
    assert before[:2] == ["1", "1"] and before[-2:] == ["no", "error"], before
    got = a.ok(f"print(words(0, 0, 3) + words(0, {last}, 1))")
    assert got.strip() == str([pattern(0, 1), pattern(1, 1), pattern(2, 1), pattern(last, 1)])
    address = int(a.ok("print(lib.devbuf_address(0))"))
    content, text, _ = a.run("%crac checkpoint gpu1", timeout=300)
    assert content["status"] == "ok", text
    image = jupyter_home["images"] / "gpu1.crac"
    assert f"checkpoint written: {image}" in text

    cuda = inspect_cuda(image)
    assert cuda.get("backend") == "sim", cuda
    assert (address, first_size) in allocations(cuda), json.dumps(cuda, indent=1)[:4000]
    listing = subprocess.run([crac_bin(), "inspect", str(image)], capture_output=True, text=True)
    assert listing.returncode == 0, listing.stderr
    lines = [" ".join(line.split()) for line in listing.stdout.splitlines()]
    assert f"allocation {address:#014x} 64 MiB" in lines, listing.stdout
    assert "__device__ launches" in listing.stdout, listing.stdout

    # The uninterrupted run: the second buffer is computed on the device from the first.
    a.ok(f"fill({second_size}, 2)", timeout=300)
    reference = a.ok("state()")
    reference_words = a.ok("print(words(1, 0, 2))")
    assert reference_words.strip() == str([xor(pattern(i, 2), pattern(i, 1)) for i in (0, 1)])
    a.kill_all()

    b = session(gpu_kernel)
    assert "NameError" in b.run("lib")[1], "a new session starts with a fresh kernel"
    content, text, _ = b.run("%crac resume gpu1", timeout=300)
    assert content["status"] == "ok", text
    assert f"resumed from {image}" in text
    assert b.ok("state()").split() == before, "the device bytes and counter came back"
    b.ok(f"fill({second_size}, 2)", timeout=300)
    assert b.ok("state()") == reference
    assert b.ok("print(words(1, 0, 2))") == reference_words
    assert int(b.ok("print(lib.devbuf_address(0))")) == address


def test_a_resumed_gpu_kernel_checkpoints_its_device_again_from_a_plain_crac_kernel(
    session, jupyter_home, gpu_kernel, devbuf
):
    a = session(gpu_kernel)
    a.ok(f"PATH = {str(devbuf)!r}\n{SETUP}")
    a.ok(f"fill({4 * MIB}, 7)")
    before = a.ok("state()")
    assert a.run("%crac checkpoint gpu2", timeout=300)[0]["status"] == "ok"
    a.kill_all()
    b = session()  # "Python 3 (crac)": the image says which backend its device state needs
    content, text, _ = b.run("%crac resume gpu2", timeout=300)
    assert content["status"] == "ok", text
    assert b.ok("state()") == before
    b.ok(f"fill({4 * MIB}, 8)")
    assert b.ok("print(lib.devbuf_launches())").strip() == "2"
    assert b.ok("print(words(1, 5, 1))").strip() == str([xor(pattern(5, 8), pattern(5, 7))])
    # A second generation: the restarted kernel's device state, now two buffers, is saved again.
    after = b.ok("state()")
    content, text, _ = b.run("%crac checkpoint gpu3", timeout=300)
    assert content["status"] == "ok", text
    sizes = sorted(size for _, size in allocations(inspect_cuda(jupyter_home["images"] / "gpu3.crac")))
    assert sizes == [4 * MIB, 4 * MIB], sizes
    b.kill_all()
    c = session(gpu_kernel)
    content, text, _ = c.run("%crac resume gpu3", timeout=300)
    assert content["status"] == "ok", text
    assert c.ok("state()") == after


def test_a_checkpoint_signal_while_a_cell_computes_on_the_device(
    session, jupyter_home, devbuf, tmp_path
):
    """A scheduler's warning arrives while a cell runs kernel after kernel: the image holds the
    device as it was then (the checkpoint waits for the kernel in flight), and the resumed kernel
    finishes that cell exactly as the uninterrupted one did."""
    # More `crac launch` options for a GPU kernel go into its kernelspec's env (the module doc of
    # `crac jupyter` says so): here the checkpoint signal.
    env = dict(os.environ, CRAC_JUPYTER_PYTHONPATH=str(REPO / "python"))
    name = "python3-crac-sim-signal"
    out = subprocess.run(
        [crac_bin(), "jupyter", "install", "--gpu", "sim", "--name", name, "--python", sys.executable],
        env=env, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    spec_file = jupyter_home["data"] / "kernels" / name / "kernel.json"
    spec = json.loads(spec_file.read_text())
    spec["env"]["CRAC_JUPYTER_LAUNCH_ARGS"] += " --ckpt-signal USR1"
    spec_file.write_text(json.dumps(spec))

    fills, size = 12, 16 * MIB
    ready = tmp_path / "ready"
    cell = (f"for s in range({fills}):\n    fill({size}, s)\n"
            f"    if s == 2:\n        open({str(ready)!r}, 'w').close()")
    a = session(name)
    a.ok(f"PATH = {str(devbuf)!r}\n{SETUP}")
    pid = int(a.ok("import os\nprint(os.getpid())"))
    images = str(jupyter_home["images"] / f"*-{pid}-*.crac")
    msg_id = a.kc.execute(cell)
    deadline = time.monotonic() + 120
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(a.relay_pid, signal.SIGUSR1)  # the scheduler's warning goes to the relay
    while not glob.glob(images) and time.monotonic() < deadline:
        time.sleep(0.05)
    (image,) = glob.glob(images)
    reply = a.kc.get_shell_msg(timeout=300)
    assert reply["parent_header"]["msg_id"] == msg_id and reply["content"]["status"] == "ok"
    reference = a.ok("state()")
    assert reference.split()[:2] == [str(fills), str(fills)], reference
    taken = sum(1 for _, n in allocations(inspect_cuda(Path(image))) if n == size)
    assert 3 <= taken < fills, f"the checkpoint did not land inside the cell ({taken} buffers)"
    a.kill_all()

    b = session(name)
    content, text, _ = b.run(f"%crac resume {image}", timeout=300)
    assert content["status"] == "ok", text
    assert b.ok("state()", timeout=300) == reference
    print(f"the checkpoint signal landed after {taken} of {fills} fills")
