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
import ctypes
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

from crac_jupyter import paths
from crac_jupyter.wire import Message, Signer, WireError, dumps

RESUME_CELL = re.compile(r"^\s*%crac\s+resume(?:\s+(\S+))?\s*$")
PR_SET_PDEATHSIG = 1
#: How long the relay waits for a restarted kernel to listen and connect.
RESTART_WAIT_S = 120.0


def log(text: str) -> None:
    """One line on stderr (the Jupyter server's log)."""
    print(f"crac-jupyter relay[{os.getpid()}]: {text}", file=sys.stderr, flush=True)


def free_ports(n: int) -> list[int]:
    """n loopback TCP ports that were free a moment ago."""
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


def listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port (or any address) over TCP."""
    want = f"{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                local, st = line.split()[1], line.split()[3]
                if st == "0A" and local.endswith(":" + want):
                    return True
    except OSError:
        pass
    return False


def descendants(pid: int) -> list[int]:
    """pid's descendants, breadth first."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                with open(f"/proc/{p}/task/{t}/children") as f:
                    kids = [int(k) for k in f.read().split()]
            except OSError:
                continue
            out += kids
            todo += kids
    return out


def ns_pid(pid: int) -> int | None:
    """pid's process id in its innermost pid namespace."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except OSError:
        pass
    return None


def restart_command(image: str, pid: int) -> list[str]:
    """The command that restarts the kernel in image under its old pid.

    ``CRAC_JUPYTER_RESTART`` picks how: ``same-pid`` (the default) is ``crac restart
    --same-pid``; ``unshare`` does the same with util-linux's unshare (a new user and pid
    namespace whose next pid is set through ``ns_last_pid``; for crac builds without
    --same-pid); ``plain`` is ``crac restart`` with a new pid (ipykernel does not survive it:
    asyncio and libzmq check their pid).
    """
    crac = paths.crac_bin()
    mode = os.environ.get("CRAC_JUPYTER_RESTART", "same-pid")
    if mode == "plain":
        return [crac, "restart", image]
    if mode == "unshare":
        script = 'echo "$1" > /proc/sys/kernel/ns_last_pid && "$2" restart "$3"; exit $?'
        return ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--kill-child",
                "--mount-proc", "sh", "-c", script, "sh", str(pid - 1), crac, image]
    return [crac, "restart", "--same-pid", image]


def read_sidecar(image: str) -> dict:
    """The sidecar that describes image's kernel (see ``paths``)."""
    side = paths.sidecar_for(image)
    if side is None:
        raise RuntimeError(f"{image} has no sidecar: it is not an image of a \"Python 3 (crac)\" kernel")
    with open(side) as f:
        return json.load(f)


def launch_options() -> list[str]:
    """Extra ``crac launch`` options for the inner kernel, from ``CRAC_JUPYTER_LAUNCH_ARGS``
    (e.g. ``--ckpt-signal USR1 --interval 1800 --keep 2``)."""
    return shlex.split(os.environ.get("CRAC_JUPYTER_LAUNCH_ARGS", ""))


def forwarded_signal(options: list[str]) -> int | None:
    """The signal ``--ckpt-signal`` names in options, which the relay passes on to the kernel
    (a scheduler's warning reaches the kernel's process group leader: the relay)."""
    for i, o in enumerate(options):
        value = None
        if o == "--ckpt-signal" and i + 1 < len(options):
            value = options[i + 1]
        elif o.startswith("--ckpt-signal="):
            value = o.split("=", 1)[1]
        if value is not None:
            if value.isdigit():
                return int(value)
            name = value.upper()
            try:
                return int(signal.Signals[name if name.startswith("SIG") else "SIG" + name])
            except KeyError:
                log(f"--ckpt-signal {value}: the relay cannot pass this signal on; send it to the kernel")
                return None
    return None


def _set_pdeathsig() -> None:
    # The inner kernel must not outlive the relay (a killed relay would leave it orphaned).
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class Relay:
    """The relay: outer channels, the inner kernel and its channels."""

    CHANNELS = ("shell", "control", "stdin")

    def __init__(self, connection: dict, python: str):
        self.ctx = zmq.Context()
        self.outer_conn = connection
        self.outer = Signer(connection.get("key", "").encode(), connection.get("signature_scheme", "hmac-sha256"))
        self.python = python
        self.workdir = tempfile.mkdtemp(prefix="crac-jupyter-")
        self.proc: subprocess.Popen | None = None
        self.kernel_pid: int | None = None
        self.shutting_down = False
        self.exit_code: int | None = None
        self.last_count = 0
        # msg_id of the request that took a checkpoint -> (new parent header, new shell idents)
        self.rewrite: dict[str, tuple[bytes, list[bytes]]] = {}
        self.inner_sockets: dict[str, zmq.Socket] = {}
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
        self.identity = identity
        monitors = []
        for name in (*self.CHANNELS, "iopub"):
            if name == "iopub":
                s = self.ctx.socket(zmq.SUB)
                s.setsockopt(zmq.SUBSCRIBE, b"")
            else:
                s = self.ctx.socket(zmq.DEALER)
                # One identity on every channel: the kernel sends input requests to the identity
                # its execute request came from, on the stdin socket.
                s.setsockopt(zmq.IDENTITY, identity)
            s.linger = 0
            monitors.append(s.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED))
            s.connect(self._url(conn, name))
            self.inner_sockets[name] = s
        self._monitors = monitors

    def _wait_connected(self, limit_s: float) -> bool:
        """Waits until every inner socket finished its handshake with the kernel."""
        deadline = time.monotonic() + limit_s
        for m in self._monitors:
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not m.poll(int(left * 1000)):
                    return False
                ev = recv_monitor_message(m)
                if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                    break
        return True

    def _close_inner(self) -> None:
        for s in getattr(self, "_monitors", []):
            s.close(linger=0)
        self._monitors = []
        for s in self.inner_sockets.values():
            s.disable_monitor()
            s.close(linger=0)
        self.inner_sockets = {}

    # --- the inner kernel ------------------------------------------------------------------
    def _inner_env(self, conn_file: str, identity: bytes) -> dict:
        env = dict(os.environ)
        # ipykernel's parent poller exits the kernel when its parent pid changes (a restarted
        # kernel's parent is crac's supervisor, or pid 1 in its pid namespace). 1 is ipykernel's
        # "no parent to watch" (without the variable it also prints console-only hints); the
        # relay ties the two lifetimes instead (PR_SET_PDEATHSIG).
        env["JPY_PARENT_PID"] = "1"
        pkg_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (pkg_root, env.get("PYTHONPATH", "")) if p)
        env["CRAC_JUPYTER_CONNECTION"] = conn_file
        env["CRAC_JUPYTER_IDENTITY"] = identity.hex()
        env["CRAC_JUPYTER_RELAY_PID"] = str(os.getpid())
        env["CRAC_JUPYTER_DIR"] = paths.image_dir()
        return env

    def launch(self) -> None:
        """Starts a fresh inner kernel under crac and connects to it."""
        ports = free_ports(5)
        conn = {
            "transport": "tcp",
            "ip": "127.0.0.1",
            "key": secrets.token_hex(32),
            "signature_scheme": "hmac-sha256",
            "kernel_name": "",
        }
        for name, port in zip(("shell", "iopub", "stdin", "control", "hb"), ports):
            conn[name + "_port"] = port
        conn_file = os.path.join(self.workdir, "inner.json")
        paths.write_private_json(conn_file, conn)
        identity = secrets.token_hex(8).encode()
        cmd = [paths.crac_bin(), "launch", "--dir", paths.image_dir(), *launch_options(), "--",
               self.python, "-m", "crac_jupyter.kernel", "-f", conn_file]
        self.proc = subprocess.Popen(
            cmd, env=self._inner_env(conn_file, identity), stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_set_pdeathsig,
        )
        self.kernel_pid = self.proc.pid
        self._connect_inner(conn, identity)
        self._write_lineage(conn, identity, self.proc.pid)
        log(f"inner kernel pid {self.kernel_pid} on ports {ports}")

    def _write_lineage(self, conn: dict, identity: bytes, lineage: int) -> None:
        """Describes the kernel for images that crac_ckpt or a checkpoint signal write (named
        after the kernel's launch pid, which --same-pid keeps)."""
        self.lineage = lineage
        path = paths.lineage_sidecar(lineage)
        side = {"version": 1, "connection": conn, "identity": identity.hex(), "kernel_pid": lineage,
                "python": self.python, "created": time.time()}
        paths.write_private_json(path, side)

    def _forget_lineage(self) -> None:
        """Removes the lineage sidecar when no image of that kernel needs it."""
        lineage = getattr(self, "lineage", None)
        if lineage is None:
            return
        d = paths.image_dir()
        if not any(re.match(rf"^.*-{lineage}-\d+\.crac$", n) for n in os.listdir(d)):
            try:
                os.unlink(paths.lineage_sidecar(lineage, d))
            except FileNotFoundError:
                pass

    def kill_inner(self) -> None:
        """Kills the inner kernel (and a restart's supervisor) and waits for it."""
        self._close_inner()
        for pid in [p for p in (self.kernel_pid,) if p] + ([self.proc.pid] if self.proc else []):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            self.proc.wait()
        self.proc = None
        self.kernel_pid = None

    def restart_from(self, image: str) -> None:
        """Replaces the inner kernel with the one checkpointed in image; raises RuntimeError with
        the reason when it does not come back."""
        side = read_sidecar(image)
        conn = side.get("connection")
        if not conn or not side.get("identity"):
            raise RuntimeError(f"the sidecar of {image} lacks the kernel's connection")
        self.kill_inner()
        self.pending.clear()
        marker = image + paths.RESUMED_SUFFIX
        try:
            os.unlink(marker)
        except FileNotFoundError:
            pass
        ports = [conn[n + "_port"] for n in ("shell", "iopub", "stdin", "control", "hb")]
        # A killed kernel's sockets close as it is torn down, which may take a moment.
        deadline = time.monotonic() + 5
        while (busy := [p for p in ports if listening(p)]) and time.monotonic() < deadline:
            time.sleep(0.05)
        if busy:
            raise RuntimeError(
                f"the kernel's ports {busy} are in use on this machine; the image's kernel "
                "listens on them and cannot come back while they are taken"
            )
        cmd = restart_command(image, int(side.get("kernel_pid", 0)))
        errfile = os.path.join(self.workdir, "restart.err")
        with open(errfile, "wb") as err:
            self.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stderr=err, start_new_session=True,
                preexec_fn=_set_pdeathsig,
            )
        deadline = time.monotonic() + RESTART_WAIT_S
        while not all(listening(conn[n + "_port"]) for n in ("shell", "iopub", "stdin", "control")):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                with open(errfile, errors="replace") as f:
                    why = f.read().strip()
                code = self.proc.poll()
                self.kill_inner()
                raise RuntimeError(
                    f"crac restart {'exited with status ' + str(code) if code is not None else 'did not bring the kernel back in time'}"
                    + (f": {why}" if why else "")
                )
            time.sleep(0.02)
        self.kernel_pid = self._find_kernel(int(side.get("kernel_pid", 0)))
        self._connect_inner(conn, bytes.fromhex(side["identity"]))
        if not self._wait_connected(30):
            self.kill_inner()
            raise RuntimeError("the restarted kernel's sockets did not accept the relay")
        # The SUB socket's subscription travels right after its handshake.
        time.sleep(0.1)
        with open(marker + ".tmp", "w") as f:
            json.dump({"relay_pid": os.getpid(), "at": time.time()}, f)
        os.replace(marker + ".tmp", marker)
        self._write_lineage(conn, bytes.fromhex(side["identity"]), int(side.get("kernel_pid", 0)))
        log(f"inner kernel restarted from {image}: host pid {self.kernel_pid}")

    def _find_kernel(self, old_pid: int) -> int:
        """The restarted kernel's pid as seen here: the descendant of crac restart whose pid in
        its own namespace is the checkpointed one (crac restart itself without --same-pid)."""
        assert self.proc is not None
        for _ in range(100):
            for p in descendants(self.proc.pid):
                if ns_pid(p) == old_pid and p != self.proc.pid:
                    return p
            if ns_pid(self.proc.pid) == old_pid or os.environ.get("CRAC_JUPYTER_RESTART") == "plain":
                return self.proc.pid
            time.sleep(0.02)
        return self.proc.pid

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
            "session": getattr(self, "session_id", "") or secrets.token_hex(16),
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
        except (paths.PathError, OSError, RuntimeError, ValueError) as e:
            text = str(e)
            log(f"resume failed: {text}")
            err = {"ename": "ResumeError", "evalue": text, "traceback": [f"ResumeError: {text}"]}
            self._reply(req, "iopub", "error", err)
            self._reply(req, "shell", "execute_reply", {"status": "error", "execution_count": self.last_count + 1, **err})
            self._reply(req, "iopub", "status", {"execution_state": "idle"})
            if self.proc is None:
                # The old kernel is gone and the image did not come back: start afresh, so the
                # session goes on (the error above says what happened).
                self.launch()
            return

    def forward_interrupt(self, *_args) -> None:
        """SIGINT from the server: interrupt the inner kernel."""
        self._forward(signal.SIGINT)

    def _forward(self, signum: int) -> None:
        if self.kernel_pid:
            try:
                os.kill(self.kernel_pid, signum)
            except ProcessLookupError:
                pass

    # --- the loop --------------------------------------------------------------------------
    def run(self) -> int:
        """Relays until the inner kernel exits; returns the relay's exit status."""
        signal.signal(signal.SIGINT, self.forward_interrupt)
        fwd = forwarded_signal(launch_options())
        if fwd is not None:
            signal.signal(fwd, lambda signum, _f: self._forward(signum))
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
            if self.proc is not None and self.proc.poll() is not None:
                code = self.proc.returncode
                self._drain_inner()
                log(f"inner kernel exited with status {code}")
                self.exit_code = 0 if self.shutting_down else (code if code and code > 0 else 1)
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
        if self.proc is not None and self.proc.poll() is None:
            self.kill_inner()
        self._close_inner()
        try:
            self._forget_lineage()
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
    except (paths.PathError, RuntimeError, OSError) as e:
        log(f"cannot start the kernel: {e}")
        relay.close()
        return 1
    return relay.run()


if __name__ == "__main__":
    sys.exit(main())
