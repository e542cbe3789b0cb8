"""The process a Jupyter server starts for the "Python 3 (crac)" kernel:
``python -m crac_jupyter.relay -f CONNECTION_FILE``.

It binds the five channels of the server's connection file and answers heartbeats itself. The
real kernel (``crac_jupyter.kernel``, i.e. ipykernel) runs under ``crac launch`` on private
loopback ports with a key of its own; every message passes both ways, its signature checked
with one side's key and written again with the other's. Only that inner kernel is ever
checkpointed, so the server's sockets, the relay's pid and its parent never change: the server
sees one kernel process for the whole session, however often the inner one is replaced.

- Interrupt: the server signals the relay's process group (the inner kernel has a group of its
  own, so it is signalled once); the relay sends SIGINT to the inner kernel. With
  ``interrupt_mode: message`` the request is passed on the control channel like any other.
- Shutdown and restart requests pass through; when the inner kernel exits the relay exits with
  its status (0 after a shutdown request), and the server starts a new relay for a restart.
- ``%crac resume [NAME|PATH]`` (alone in its cell) is answered here: the inner kernel is killed
  and ``crac restart --same-pid IMAGE`` brings the checkpointed one back with its old pid. Its
  sockets are bound again at their old ports, so the relay connects there with the old key and
  its old socket identity (both saved beside the image by ``%crac checkpoint``). The restarted
  kernel finishes the cell that took the checkpoint; the relay rewrites the parent header of
  what that cell sends (and routes its reply) onto the ``%crac resume`` request, so in the new
  session the resume cell shows the kernel's "resumed" line and completes with the old
  execution count. The kernel waits for ``IMAGE.resumed`` (written once the relay's sockets are
  connected) before it answers, so nothing it sends is lost.
- Scheduled checkpoints: ``CRAC_JUPYTER_LAUNCH_ARGS`` adds ``crac launch`` options (e.g.
  ``--ckpt-signal USR1 --interval 1800 --keep 2``); the relay passes the ``--ckpt-signal`` signal
  on to the kernel. Such images (and ``crac_ckpt KERNEL_PID``'s) are described by the relay's
  lineage sidecar, so ``%crac resume PATH`` takes them too; the relay then completes the resume
  cell itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import signal
import sys
import tempfile
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from crac_jupyter import paths
from crac_jupyter.inner import InnerError, InnerKernel, forwarded_signal, launch_options, read_sidecar
from crac_jupyter.wire import Message, Signer, WireError, dumps

RESUME_CELL = re.compile(r"^\s*%crac\s+resume(?:\s+(\S+))?\s*$")


def log(text: str) -> None:
    """One line on stderr (the Jupyter server's log)."""
    print(f"crac-jupyter relay[{os.getpid()}]: {text}", file=sys.stderr, flush=True)


class Relay:
    """The relay: the server's channels, the inner kernel's, and what passes between them."""

    CHANNELS = ("shell", "control", "stdin")

    def __init__(self, connection: dict, python: str):
        self.ctx = zmq.Context()
        self.outer_conn = connection
        self.outer = Signer(connection.get("key", "").encode(), connection.get("signature_scheme", "hmac-sha256"))
        self.workdir = tempfile.mkdtemp(prefix="crac-jupyter-")
        self.kernel = InnerKernel(python, self.workdir, os.getpid())
        # The session of the messages the relay writes itself (resume cells).
        self.session_id = secrets.token_hex(16)
        self.shutting_down = False
        self.exit_code: int | None = None
        self.last_count = 0
        # msg_id of the request that took a checkpoint -> (new parent header, new shell idents)
        self.rewrite: dict[str, tuple[bytes, list[bytes]]] = {}
        self.inner_sockets: dict[str, zmq.Socket] = {}
        self._monitors: list[zmq.Socket] = []
        # Execute requests passed to the kernel and not answered yet; a resume waits for them,
        # as it would in the kernel's own queue.
        self.pending: set[str] = set()
        self.deferred: list[tuple[Message, str | None]] = []
        self._bind_outer()

    # --- sockets ---------------------------------------------------------------------------
    def _url(self, conn: dict, name: str) -> str:
        ip = conn.get("ip", "127.0.0.1")
        if conn.get("transport", "tcp") == "ipc":
            return f"ipc://{ip}-{conn[name + '_port']}"
        return f"tcp://{ip}:{conn[name + '_port']}"

    def _bind_outer(self) -> None:
        kinds = {"shell": zmq.ROUTER, "control": zmq.ROUTER, "stdin": zmq.ROUTER, "iopub": zmq.PUB, "hb": zmq.REP}
        self.out: dict[str, zmq.Socket] = {}
        for name, kind in kinds.items():
            s = self.ctx.socket(kind)
            s.linger = 1000
            s.bind(self._url(self.outer_conn, name))
            self.out[name] = s

    def _connect_inner(self, conn: dict, identity: bytes) -> None:
        self._close_inner()
        self.inner = Signer(conn["key"].encode(), conn.get("signature_scheme", "hmac-sha256"))
        for name in (*self.CHANNELS, "iopub"):
            if name == "iopub":
                s = self.ctx.socket(zmq.SUB)
                s.setsockopt(zmq.SUBSCRIBE, b"")
            else:
                s = self.ctx.socket(zmq.DEALER)
                # One identity on every channel: the kernel sends input requests to the identity
                # its execute request came from, on the stdin socket. A restarted kernel's reply
                # to the cell that took the checkpoint goes to the identity of that time.
                s.setsockopt(zmq.IDENTITY, identity)
            s.linger = 0
            self._monitors.append(s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED))
            s.connect(self._url(conn, name))
            self.inner_sockets[name] = s

    def _wait_connected(self, limit_s: float) -> bool:
        """Waits until every inner socket finished its handshake with the kernel."""
        deadline = time.monotonic() + limit_s
        for m in self._monitors:
            while True:
                if time.monotonic() > deadline:
                    return False
                self._answer_heartbeats()
                if m.poll(50) and recv_monitor_message(m)["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    break
        return True

    def _answer_heartbeats(self) -> None:
        """Echoes pending heartbeats (while a resume keeps the loop busy)."""
        hb = self.out["hb"]
        while hb.poll(0):
            hb.send_multipart(hb.recv_multipart())

    def _close_inner(self) -> None:
        for s in self._monitors:
            s.close(linger=0)
        self._monitors = []
        for s in self.inner_sockets.values():
            s.disable_monitor()
            s.close(linger=0)
        self.inner_sockets = {}

    # --- the inner kernel ------------------------------------------------------------------
    def launch(self) -> None:
        """Starts a fresh inner kernel under crac and connects to it."""
        conn, identity = self.kernel.launch()
        self._connect_inner(conn, identity)
        log(f"inner kernel pid {self.kernel.pid} on ports {[conn[n + '_port'] for n in ('shell', 'iopub', 'stdin', 'control', 'hb')]}")

    def kill_inner(self) -> None:
        """Kills the inner kernel and forgets its sockets."""
        self._close_inner()
        self.kernel.kill()

    def restart_from(self, image: str) -> None:
        """Replaces the inner kernel with the one checkpointed in image; raises InnerError with
        the reason when it does not come back."""
        side = read_sidecar(image)
        if not side.get("connection") or not side.get("identity"):
            raise InnerError(f"the sidecar of {image} lacks the kernel's connection")
        self.kill_inner()
        self.pending.clear()
        marker = image + paths.RESUMED_SUFFIX
        try:
            os.unlink(marker)
        except FileNotFoundError:
            pass
        self.kernel.restart(image, side, tick=self._answer_heartbeats)
        self._connect_inner(side["connection"], bytes.fromhex(side["identity"]))
        if not self._wait_connected(30):
            self.kill_inner()
            raise InnerError("the restarted kernel's sockets did not accept the relay")
        # The SUB socket's subscription travels right after its handshake.
        time.sleep(0.1)
        paths.write_private_json(marker, {"relay_pid": os.getpid(), "at": time.time()})
        log(f"inner kernel restarted from {image}: host pid {self.kernel.pid}")

    # --- messages --------------------------------------------------------------------------
    def _send_outer(self, channel: str, msg: Message) -> None:
        self.out[channel].send_multipart(self.outer.serialize(msg))

    def _reply(self, req: Message, channel: str, msg_type: str, content: dict) -> None:
        """Sends a message of the relay's own, as a reply to req, on channel."""
        rh = req.header_dict()
        header = {
            "msg_id": secrets.token_hex(16),
            "msg_type": msg_type,
            "username": rh.get("username", ""),
            "session": self.session_id,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
            "version": rh.get("version", "5.3"),
        }
        idents = req.idents if channel != "iopub" else [f"kernel.relay.{msg_type}".encode()]
        self._send_outer(channel, Message(idents, dumps(header), req.header, b"{}", dumps(content)))

    def _from_outer(self, channel: str, frames: list[bytes]) -> None:
        try:
            msg = self.outer.parse(frames)
        except WireError as e:
            log(f"dropped a {channel} message: {e}")
            return
        mt = msg.msg_type
        if channel == "shell" and mt == "execute_request":
            m = RESUME_CELL.match(msg.content_dict().get("code", ""))
            if m:
                if self.pending or self.deferred:
                    self.deferred.append((msg, m.group(1)))
                else:
                    self.resume(msg, m.group(1))
                return
            self.pending.add(msg.header_dict().get("msg_id", ""))
        if channel == "control" and mt == "shutdown_request":
            self.shutting_down = True
        sock = self.inner_sockets.get(channel)
        if sock is None:
            log(f"dropped a {mt} on {channel}: no kernel is connected")
            return
        sock.send_multipart(self.inner.serialize(msg))

    def _from_inner(self, channel: str, frames: list[bytes]) -> None:
        try:
            msg = self.inner.parse(frames)
        except WireError as e:
            log(f"dropped a {channel} message from the kernel: {e}")
            return
        pid = msg.parent_msg_id
        if pid in self.rewrite:
            new_parent, idents = self.rewrite[pid]
            msg.parent = new_parent
            if channel in self.CHANNELS:
                msg.idents = list(idents)
        if msg.msg_type == "execute_reply":
            self.last_count = int(msg.content_dict().get("execution_count") or self.last_count)
            self.pending.discard(pid)
        self._send_outer(channel, msg)
        while self.deferred and not self.pending:
            self.resume(*self.deferred.pop(0))

    def resume(self, req: Message, spec: str | None) -> None:
        """Answers a ``%crac resume`` cell: replaces the inner kernel with a checkpointed one."""
        self._reply(req, "iopub", "status", {"execution_state": "busy"})
        code = req.content_dict().get("code", "")
        self._reply(req, "iopub", "execute_input", {"code": code, "execution_count": self.last_count + 1})
        try:
            image = paths.resolve(spec)
            old_id = read_sidecar(image).get("checkpoint_msg_id", "")
            self._reply(req, "iopub", "stream", {"name": "stdout", "text": f"restarting the kernel from {image}\n"})
            if old_id:
                # Registered before the kernel comes back: it may answer at once.
                self.rewrite[old_id] = (req.header, req.idents)
            self.restart_from(image)
            if not old_id:
                # An image from crac_ckpt or a checkpoint signal: no cell of the kernel's is
                # waiting to answer this one, so the relay does.
                text = (f"resumed from {image} (written by crac_ckpt or a checkpoint signal: a "
                        "cell that was running then goes on, unseen)\n")
                self._reply(req, "iopub", "stream", {"name": "stdout", "text": text})
                self._reply(req, "shell", "execute_reply", {"status": "ok", "execution_count": self.last_count + 1,
                                                            "user_expressions": {}, "payload": []})
                self._reply(req, "iopub", "status", {"execution_state": "idle"})
        except (paths.PathError, InnerError, OSError, ValueError) as e:
            text = str(e)
            log(f"resume failed: {text}")
            err = {"ename": "ResumeError", "evalue": text, "traceback": [f"ResumeError: {text}"]}
            self._reply(req, "iopub", "error", err)
            self._reply(req, "shell", "execute_reply", {"status": "error", "execution_count": self.last_count + 1, **err})
            self._reply(req, "iopub", "status", {"execution_state": "idle"})
            if self.kernel.proc is None:
                # The old kernel is gone and the image did not come back: start afresh, so the
                # session goes on (the error above says what happened).
                self.launch()

    # --- the loop --------------------------------------------------------------------------
    def run(self) -> int:
        """Relays until the inner kernel exits; returns the relay's exit status."""
        signal.signal(signal.SIGINT, lambda *_: self.kernel.signal(signal.SIGINT))
        fwd = forwarded_signal(launch_options())
        if fwd is not None:
            signal.signal(fwd, lambda signum, _f: self.kernel.signal(signum))
        signal.signal(signal.SIGTERM, lambda *_: self._terminate())
        while self.exit_code is None:
            poller = zmq.Poller()
            for s in (*self.out.values(), *self.inner_sockets.values()):
                poller.register(s, zmq.POLLIN)
            try:
                ready = dict(poller.poll(100))
            except zmq.ZMQError as e:
                if e.errno == zmq.EINTR:
                    continue
                raise
            for name, s in self.out.items():
                if s in ready:
                    frames = s.recv_multipart()
                    if name == "hb":
                        s.send_multipart(frames)
                    elif name in self.CHANNELS:
                        self._from_outer(name, frames)
            for name, s in list(self.inner_sockets.items()):
                if s in ready and self.inner_sockets.get(name) is s:
                    self._from_inner(name, s.recv_multipart())
            code = self.kernel.exited()
            if code is not None:
                self._drain_inner()
                log(f"inner kernel exited with status {code}")
                self.exit_code = 0 if self.shutting_down else (code if code > 0 else 1)
        self.close()
        return self.exit_code

    def _drain_inner(self) -> None:
        """Passes on what the exited kernel sent last (its shutdown reply)."""
        for _ in range(3):
            moved = False
            for name, s in list(self.inner_sockets.items()):
                while s.poll(20):
                    self._from_inner(name, s.recv_multipart())
                    moved = True
            if not moved:
                break

    def _terminate(self) -> None:
        self.shutting_down = True
        self.kill_inner()
        self.exit_code = 0

    def close(self) -> None:
        """Kills the inner kernel if it is alive and removes the relay's files."""
        if self.kernel.proc is not None and self.kernel.exited() is None:
            self.kill_inner()
        self._close_inner()
        try:
            self.kernel.forget_lineage()
        except OSError:
            pass
        for s in self.out.values():
            s.close(linger=200)
        self.ctx.term()
        shutil.rmtree(self.workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """``python -m crac_jupyter.relay -f CONNECTION_FILE [--resume NAME|PATH|newest]``."""
    ap = argparse.ArgumentParser(prog="crac_jupyter.relay", description=__doc__.split("\n")[0])
    ap.add_argument("-f", dest="connection_file", required=True, help="the server's connection file")
    ap.add_argument("--python", default=sys.executable, help="the Python the kernel runs (default: this one)")
    ap.add_argument("--resume", metavar="NAME|PATH|newest",
                    default=os.environ.get("CRAC_JUPYTER_RESUME") or None,
                    help="start from a checkpointed kernel instead of a fresh one")
    args = ap.parse_args(argv)
    with open(args.connection_file) as f:
        conn = json.load(f)
    relay = Relay(conn, args.python)
    try:
        if args.resume:
            relay.restart_from(paths.resolve(None if args.resume == "newest" else args.resume))
        else:
            relay.launch()
    except (paths.PathError, InnerError, OSError) as e:
        log(f"cannot start the kernel: {e}")
        relay.close()
        return 1
    return relay.run()


if __name__ == "__main__":
    sys.exit(main())
