"""``%crac``: checkpoint, list and status, run inside the inner kernel; ``resume`` is done by the
relay (it replaces the kernel process) and only explained here.

``%crac checkpoint [NAME]`` refuses while the kernel has child processes (``!cmd &``,
multiprocessing, ``subprocess.Popen``): a restarted kernel could not have them back. Otherwise it
asks crac's agent for an image (``agent.checkpoint``), names it ``NAME.crac``, writes the sidecar
the relay needs to reconnect, verifies the image with ``crac inspect --verify`` and prints its
path, size and times. In a kernel restarted from that image the same call returns "restarted":
the cell waits until the new relay is connected (``NAME.crac.resumed``) and says it resumed.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from crac_jupyter import agent, inner, paths

USAGE = """%crac checkpoint [NAME]   write and verify an image of this kernel (NAME.crac)
%crac list                list the kernel images
%crac status              this kernel's pid, relay, image directory and children
%crac resume [NAME|PATH]  (its own cell) restart the kernel from an image: the newest when
                          none is named"""

#: How long a restarted kernel waits for its new relay before it answers anyway.
RESUME_WAIT_S = 120.0


def _connection_at_start() -> dict | None:
    path = os.environ.get("CRAC_JUPYTER_CONNECTION")
    if not path:
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except OSError:
        return None


# Read once, when the kernel starts: the file may be gone (with its relay) by the time a kernel
# restarted from an image checkpoints again, and the sockets are still bound to these ports.
_CONNECTION = _connection_at_start()
_IDENTITY = os.environ.get("CRAC_JUPYTER_IDENTITY", "")
_last: dict = {}


def children() -> list[tuple[int, str]]:
    """This process's children: (pid, command line)."""
    out = []
    for p in inner.child_pids(os.getpid()):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = " ".join(a.decode(errors="replace") for a in f.read().split(b"\0") if a)
        except OSError:
            cmd = "?"
        out.append((p, cmd or "?"))
    return sorted(set(out))


def _wait_for_children(limit_s: float) -> list[tuple[int, str]]:
    deadline = time.monotonic() + limit_s
    while True:
        kids = children()
        if not kids or time.monotonic() >= deadline:
            return kids
        time.sleep(0.05)


def _parent_msg_id(shell) -> str:
    kernel = getattr(shell, "kernel", None)
    parent = None
    if kernel is not None:
        try:
            parent = kernel.get_parent("shell")
        except TypeError:
            parent = kernel.get_parent()
    if not parent:
        parent = getattr(shell, "parent_header", None) or {}
    return str(parent.get("header", {}).get("msg_id", ""))


def _flush() -> None:
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except Exception:
            pass


def _verify(image: str) -> float:
    t0 = time.monotonic()
    try:
        r = subprocess.run(
            [paths.crac_bin(), "inspect", "--verify", image],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
    except (OSError, paths.PathError) as e:
        raise UsageError(f"the image was written but could not be verified: {e}") from None
    if r.returncode != 0:
        raise UsageError(
            f"the image {image} was written but does not verify: {(r.stderr or r.stdout).strip()}"
        )
    return time.monotonic() - t0


def _wait_for_relay(image: str) -> dict:
    marker = image + paths.RESUMED_SUFFIX
    deadline = time.monotonic() + RESUME_WAIT_S
    while time.monotonic() < deadline:
        try:
            with open(marker) as f:
                info = json.load(f)
            return info
        except (OSError, ValueError):
            time.sleep(0.02)
    return {}


def checkpoint(shell, name: str | None) -> dict:
    """``%crac checkpoint [NAME]``; returns what it printed as a dict."""
    directory = paths.image_dir()
    if not name:
        name = time.strftime("kernel-%Y%m%d-%H%M%S")
    try:
        target = paths.image_for_name(name, directory)
    except paths.PathError as e:
        raise UsageError(str(e)) from None
    kids = _wait_for_children(1.0)
    if kids:
        listed = "; ".join(f"pid {p}: {c}" for p, c in kids)
        raise UsageError(
            f"cannot checkpoint while the kernel has child processes ({listed}); a restarted "
            "kernel could not have them back. Wait for them to end (or stop them) and run "
            "%crac checkpoint again"
        )
    msg_id = _parent_msg_id(shell)
    _flush()
    t0 = time.monotonic()
    try:
        report = agent.checkpoint(directory)
    except agent.AgentError as e:
        raise UsageError(f"checkpoint failed: {e}") from None
    if report.get("restarted"):
        info = _wait_for_relay(target)
        if info.get("relay_pid"):
            os.environ["CRAC_JUPYTER_RELAY_PID"] = str(info["relay_pid"])
        print(f"resumed from {target}: this kernel's variables, modules and open files are back")
        return {"resumed": target}
    took = time.monotonic() - t0
    os.replace(report["path"], target)
    sidecar = {
        "version": 1,
        "name": name,
        "image": target,
        "connection": _CONNECTION,
        "identity": _IDENTITY,
        "checkpoint_msg_id": msg_id,
        "kernel_pid": os.getpid(),
        "python": sys.executable,
        "created": time.time(),
    }
    paths.write_private_json(target + paths.SIDECAR_SUFFIX, sidecar)
    verify_s = _verify(target)
    size = os.path.getsize(target)
    print(f"checkpoint written: {target}")
    print(
        f"  size {paths.human_size(size)} (program memory {paths.human_size(report.get('memory_bytes', 0))}), "
        f"paused {report.get('pause_ms', 0)} ms, written in {report.get('write_ms', 0)} ms, "
        f"{took:.2f} s in all, verified in {verify_s:.2f} s"
    )
    _last.update(path=target, size=size, at=time.time(), took_s=took)
    return {"path": target, "size": size, "took_s": took, "verify_s": verify_s}


def list_images() -> None:
    """``%crac list``."""
    d = paths.image_dir()
    found = paths.list_images(d)
    if not found:
        print(f"no kernel images in {d}")
        return
    print(f"kernel images in {d} (oldest first):")
    for e in found:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(e["mtime"]))
        print(f"  {e['name']:<32} {paths.human_size(e['size']):>10}  {when}")


def status() -> None:
    """``%crac status``."""
    under = agent.under_crac()
    print(f"kernel pid {os.getpid()}, {'running under crac' if under else 'NOT running under crac'}")
    relay = os.environ.get("CRAC_JUPYTER_RELAY_PID")
    print(f"relay pid {relay}" if relay else "no relay (not started by the \"Python 3 (crac)\" kernel)")
    d = paths.image_dir()
    print(f"image directory {d} ({len(paths.list_images(d))} kernel images)")
    if _last:
        print(f"last checkpoint {_last['path']} ({paths.human_size(_last['size'])})")
    kids = children()
    if kids:
        print("children (a checkpoint waits for them to end): " + "; ".join(f"pid {p}: {c}" for p, c in kids))
    else:
        print("no child processes")


@magics_class
class CracMagics(Magics):
    """The ``%crac`` line magic."""

    @line_magic
    def crac(self, line: str):
        """Checkpoint and resume this kernel with crac; ``%crac`` alone prints the usage."""
        args = shlex.split(line)
        if not args or args[0] in ("help", "-h", "--help"):
            print(USAGE)
            return None
        verb, rest = args[0], args[1:]
        if verb == "checkpoint" and len(rest) <= 1:
            checkpoint(self.shell, rest[0] if rest else None)
        elif verb == "list" and not rest:
            list_images()
        elif verb == "status" and not rest:
            status()
        elif verb == "resume" and len(rest) <= 1:
            raise UsageError(
                "%crac resume must be the only line of its cell, in a \"Python 3 (crac)\" kernel: "
                "the kernel's relay replaces this kernel with the restarted one"
            )
        else:
            raise UsageError(f"unknown %crac command {line!r}\n{USAGE}")
        return None
