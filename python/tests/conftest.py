"""Fixtures for the "Python 3 (crac)" kernel's tests: real kernels started by jupyter_client from
the kernelspec that ``crac jupyter install`` writes into a private Jupyter data directory.

crac is ``$CRAC_BIN`` (scripts/test.sh sets it), else the repository's ``target/debug/crac``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The package under test, for the tests of its parts (kernels get it from their kernelspec).
sys.path.insert(0, str(REPO / "python"))
KERNEL_NAME = "python3-crac"


def crac_bin() -> str:
    b = os.environ.get("CRAC_BIN") or str(
        Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "debug" / "crac"
    )
    if not os.access(b, os.X_OK):
        raise RuntimeError(f"no crac executable at {b}: build it (cargo build -p crac) or set CRAC_BIN")
    return b


@pytest.fixture(scope="session")
def installed(tmp_path_factory):
    """A private Jupyter data directory holding the crac kernelspec (written by ``crac jupyter
    install``), and an image directory."""
    root = tmp_path_factory.mktemp("jupyter")
    data = root / "data"
    images = root / "images"
    images.mkdir()
    env = dict(os.environ, JUPYTER_DATA_DIR=str(data), CRAC_JUPYTER_PYTHONPATH=str(REPO / "python"))
    out = subprocess.run(
        [crac_bin(), "jupyter", "install", "--python", sys.executable],
        env=env, capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    assert (data / "kernels" / KERNEL_NAME / "kernel.json").is_file()
    return {"data": data, "images": images, "root": root}


@pytest.fixture
def jupyter_home(installed, monkeypatch):
    """The environment of ``installed`` for one test (other test files see their own)."""
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(installed["data"]))
    monkeypatch.setenv("JUPYTER_PATH", str(installed["data"]))
    monkeypatch.setenv("CRAC_JUPYTER_DIR", str(installed["images"]))
    return installed


def children_of(pid: int) -> list[int]:
    out = []
    try:
        for t in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def tree(pid: int) -> list[int]:
    todo, out = [pid], []
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children_of(p)
    return out


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


class Session:
    """One notebook session: a KernelManager with its client."""

    def __init__(self, kernel_name: str = KERNEL_NAME):
        from jupyter_client import KernelManager

        self.km = KernelManager(kernel_name=kernel_name)
        self.km.start_kernel()
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=90)
        self._relay = 0
        self._relay = self.relay_pid

    @property
    def relay_pid(self) -> int:
        """The relay's pid (the last one known once the kernel is shut down)."""
        prov = self.km.provisioner
        if prov is not None and prov.process is not None:
            self._relay = prov.process.pid
        return self._relay

    def run(self, code: str, timeout: float = 120) -> tuple[dict, str, list]:
        """Executes code; returns the reply content, the text of its stdout/stderr/results and
        errors, and every output message (type, content)."""
        outputs = []
        reply = self.kc.execute_interactive(
            code, timeout=timeout, output_hook=lambda m: outputs.append((m["msg_type"], m["content"]))
        )
        text = ""
        for kind, c in outputs:
            if kind == "stream":
                text += c["text"]
            elif kind in ("execute_result", "display_data"):
                text += c["data"].get("text/plain", "") + "\n"
            elif kind == "error":
                text += f"{c['ename']}: {c['evalue']}\n"
        return reply["content"], text, outputs

    def ok(self, code: str, timeout: float = 120) -> str:
        """Executes code, asserts it succeeded, returns its text."""
        content, text, _ = self.run(code, timeout)
        assert content["status"] == "ok", f"{code!r} failed: {text}"
        return text

    def kill_all(self) -> None:
        """SIGKILL for the relay and everything under it (the inner kernel)."""
        pids = tree(self.relay_pid)
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 30
        while any(alive(p) for p in pids[1:]) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.close()

    def close(self) -> None:
        try:
            self.kc.stop_channels()
        except Exception:
            pass
        if self.km.has_kernel:
            try:
                self.km.shutdown_kernel(now=True)
            except Exception:
                pass


@pytest.fixture
def session(jupyter_home):
    """A fresh "Python 3 (crac)" session, shut down (and its processes killed) afterwards."""
    opened = []

    def start(kernel_name: str = KERNEL_NAME) -> Session:
        s = Session(kernel_name)
        opened.append((s, tree(s.relay_pid)))
        return s

    yield start
    for s, pids in opened:
        now = tree(s.relay_pid) if alive(s.relay_pid) else []
        s.close()
        for p in set(pids) | set(now):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass
