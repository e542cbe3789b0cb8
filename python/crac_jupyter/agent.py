"""A checkpoint of the calling process, asked of crac's agent in it.

This is what ``crac_checkpoint()`` of ``crac.h`` does, spoken from Python so that no library has
to be found and the image directory can be chosen: crac's control protocol (a u32 little-endian
length, then JSON) over the agent's Unix socket, with ``program_fd`` naming our end of the
connection. The agent saves that fd in the image holding a ``checkpointed`` reply with
``restarted: true``, so in a process restarted from the image the same read returns that reply.

The socket is found by identity, not only by name: after ``crac_restart --same-pid`` the process
has its old pid inside a pid namespace, while its agent's socket is named after the supervisor's
pid outside. A socket is ours when its listener, seen through ``SO_PEERCRED``, is this process.
"""

from __future__ import annotations

import json
import os
import socket
import struct

PROTOCOL_VERSION = 2
MAX_REPLY = 64 << 20


class AgentError(RuntimeError):
    """The agent could not be reached, or the checkpoint failed (the agent's words)."""


def socket_dirs() -> list[str]:
    """Where crac's agents put their sockets, in the order crac looks."""
    dirs = []
    xdg = os.environ.get("XDG_RUNTIME_DIR", "")
    if xdg.startswith("/"):
        dirs.append(os.path.join(xdg, "crac"))
    dirs.append(f"/tmp/crac-{os.geteuid()}")
    return dirs


def _peer_pid(sock: socket.socket) -> int:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)[0]


def _try(path: str) -> socket.socket | None:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        if _peer_pid(s) == os.getpid():
            return s
    except OSError:
        pass
    s.close()
    return None


def connect() -> socket.socket | None:
    """A connection to this process's own agent, or None when it runs without crac."""
    me = os.getpid()
    for d in socket_dirs():
        s = _try(os.path.join(d, f"{me}.sock"))
        if s:
            return s
    for d in socket_dirs():
        try:
            names = sorted(os.listdir(d))
        except OSError:
            continue
        for n in names:
            if n.endswith(".sock") and n != f"{me}.sock":
                s = _try(os.path.join(d, n))
                if s:
                    return s
    return None


def under_crac() -> bool:
    """Whether this process runs under crac (its agent answers)."""
    s = connect()
    if s is None:
        return False
    s.close()
    return True


def _read_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise AgentError("crac's agent closed the connection without a result")
        buf += chunk
    return buf


def checkpoint(directory: str) -> dict:
    """Writes an image of this process into directory (absolute) and waits for it. Returns the
    agent's ``checkpointed`` report (``path``, ``image_bytes``, ``memory_bytes``, ``pause_ms``,
    ``write_ms``, ``restarted``); ``restarted`` is true when this process was just restarted
    from that image. Raises AgentError when there is no agent or the checkpoint failed."""
    s = connect()
    if s is None:
        raise AgentError(
            "this kernel does not run under crac; start it with the \"Python 3 (crac)\" kernel"
        )
    with s:
        body = {
            "type": "checkpoint",
            "dir": os.path.abspath(directory),
            "program_fd": s.fileno(),
        }
        req = json.dumps({"version": PROTOCOL_VERSION, "body": body}).encode()
        s.sendall(struct.pack("<I", len(req)) + req)
        while True:
            (n,) = struct.unpack("<I", _read_exact(s, 4))
            if n > MAX_REPLY:
                raise AgentError("crac's agent sent an oversized reply")
            reply = json.loads(_read_exact(s, n))
            rb = reply.get("body", {})
            kind = rb.get("type")
            if kind in ("started", "progress"):
                continue
            if kind == "checkpointed":
                return rb
            if kind == "error":
                raise AgentError(rb.get("message") or "the checkpoint failed")
            raise AgentError(f"crac's agent sent a reply this crac_jupyter does not know: {kind}")
