"""The inner kernel's process, as the relay runs it: a fresh ipykernel under ``crac launch``, or a
checkpointed one brought back by ``crac restart --same-pid``; killing it; finding its pid.

The inner kernel has a session (and process group) of its own, so the server's interrupt, sent
to the relay's group, reaches it once, through the relay. It gets ``PR_SET_PDEATHSIG(SIGKILL)``:
it must not outlive the relay (``crac restart --same-pid`` passes the same tie on to the
restarted kernel's namespace).
"""

from __future__ import annotations

import ctypes
import json
import os
import secrets
import shlex
import signal
import socket
import subprocess
import time

from crac_jupyter import paths

PR_SET_PDEATHSIG = 1
#: How long a resume waits for the killed kernel's ports to close before calling them taken.
PORTS_FREE_WAIT_S = 20.0
#: How long a restarted kernel may take to listen on its ports.
RESTART_WAIT_S = 120.0
PORT_NAMES = ("shell", "iopub", "stdin", "control", "hb")


class InnerError(RuntimeError):
    """The inner kernel could not be started or brought back (the reason, for the user)."""


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
    """Whether something listens on port over IPv4 TCP (any local address)."""
    want = f":{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A" and fields[1].endswith(want):
                    return True
    except OSError:
        pass
    return False


def child_pids(pid: int) -> list[int]:
    """pid's children (of every thread of it); none if pid is gone."""
    out = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/children") as f:
                out += [int(k) for k in f.read().split()]
        except OSError:
            continue
    return out


def descendants(pid: int) -> list[int]:
    """pid's descendants, breadth first."""
    out, todo = [], [pid]
    while todo:
        kids = child_pids(todo.pop(0))
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
        raise InnerError(f"{image} has no sidecar: it is not an image of a \"Python 3 (crac)\" kernel")
    with open(side) as f:
        return json.load(f)


def launch_options() -> list[str]:
    """Extra ``crac launch`` options for the inner kernel, from ``CRAC_JUPYTER_LAUNCH_ARGS``
    (e.g. ``--ckpt-signal USR1 --interval 1800 --keep 2``)."""
    return shlex.split(os.environ.get("CRAC_JUPYTER_LAUNCH_ARGS", ""))


def forwarded_signal(options: list[str]) -> int | None:
    """The signal ``--ckpt-signal`` names in options, which the relay passes on to the kernel
    (a scheduler's warning reaches the kernel's process group leader: the relay). None when
    there is none, or when it has no name Python knows (RTMIN+N)."""
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
                return None
    return None


def _set_pdeathsig() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class InnerKernel:
    """The inner kernel process (``proc``: what the relay started; ``pid``: the kernel itself,
    which is a descendant of ``proc`` after a restart in a pid namespace)."""

    def __init__(self, python: str, workdir: str, relay_pid: int):
        self.python = python
        self.workdir = workdir
        self.relay_pid = relay_pid
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.lineage: int | None = None

    def _env(self, conn_file: str, identity: bytes) -> dict:
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
        env["CRAC_JUPYTER_RELAY_PID"] = str(self.relay_pid)
        env["CRAC_JUPYTER_DIR"] = paths.image_dir()
        return env

    def launch(self) -> tuple[dict, bytes]:
        """Starts a fresh kernel under crac on new loopback ports with a new key; returns its
        connection and the socket identity the relay must use."""
        conn = {"transport": "tcp", "ip": "127.0.0.1", "key": secrets.token_hex(32),
                "signature_scheme": "hmac-sha256", "kernel_name": ""}
        for name, port in zip(PORT_NAMES, free_ports(len(PORT_NAMES))):
            conn[name + "_port"] = port
        conn_file = os.path.join(self.workdir, "inner.json")
        paths.write_private_json(conn_file, conn)
        identity = secrets.token_hex(8).encode()
        cmd = [paths.crac_bin(), "launch", "--dir", paths.image_dir(), *launch_options(), "--",
               self.python, "-m", "crac_jupyter.kernel", "-f", conn_file]
        self.proc = subprocess.Popen(
            cmd, env=self._env(conn_file, identity), stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=_set_pdeathsig,
        )
        self.pid = self.proc.pid
        self.write_lineage(conn, identity, self.proc.pid)
        return conn, identity

    def restart(self, image: str, side: dict, tick=lambda: None) -> None:
        """Brings back the kernel of image (described by side) and waits until it listens on
        its old ports, calling tick while it waits. The current kernel must be killed first."""
        conn = side["connection"]
        ports = [conn[n + "_port"] for n in PORT_NAMES]
        # A killed kernel's sockets close as it is torn down, which may take a while: a process
        # killed in the middle of disk I/O (an image being flushed) dies only when it returns.
        deadline = time.monotonic() + PORTS_FREE_WAIT_S
        while (busy := [p for p in ports if listening(p)]) and time.monotonic() < deadline:
            tick()
            time.sleep(0.05)
        if busy:
            raise InnerError(
                f"the kernel's ports {busy} are in use on this machine; the image's kernel "
                "listens on them and cannot come back while they are taken"
            )
        old_pid = int(side.get("kernel_pid", 0))
        errfile = os.path.join(self.workdir, "restart.err")
        with open(errfile, "wb") as err:
            self.proc = subprocess.Popen(
                restart_command(image, old_pid), stdin=subprocess.DEVNULL, stderr=err,
                start_new_session=True, preexec_fn=_set_pdeathsig,
            )
        deadline = time.monotonic() + RESTART_WAIT_S
        while not all(listening(p) for p in ports[:4]):
            code = self.proc.poll()
            if code is not None or time.monotonic() > deadline:
                with open(errfile, errors="replace") as f:
                    why = f.read().strip()
                self.kill()
                what = f"exited with status {code}" if code is not None else "did not bring the kernel back in time"
                raise InnerError(f"crac restart {what}" + (f": {why}" if why else ""))
            tick()
            time.sleep(0.02)
        self.pid = self._find(old_pid)
        self.write_lineage(conn, bytes.fromhex(side["identity"]), old_pid)

    def _find(self, old_pid: int) -> int:
        """The restarted kernel's pid as seen here: the descendant of what was started whose pid
        in its own namespace is the checkpointed one (that process itself for a plain restart)."""
        assert self.proc is not None
        for _ in range(100):
            for p in descendants(self.proc.pid):
                if ns_pid(p) == old_pid:
                    return p
            if ns_pid(self.proc.pid) == old_pid or os.environ.get("CRAC_JUPYTER_RESTART") == "plain":
                return self.proc.pid
            time.sleep(0.02)
        return self.proc.pid

    def exited(self) -> int | None:
        """The exit status of what the relay started, once it has ended."""
        return None if self.proc is None else self.proc.poll()

    def signal(self, signum: int) -> None:
        """Sends signum to the kernel itself."""
        if self.pid:
            try:
                os.kill(self.pid, signum)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """Kills the kernel (and a restart's supervisor) and waits for what the relay started."""
        for pid in {p for p in (self.pid, self.proc.pid if self.proc else None) if p}:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if self.proc:
            self.proc.wait()
        self.proc = None
        self.pid = None

    def write_lineage(self, conn: dict, identity: bytes, lineage: int) -> None:
        """Describes the kernel for images that crac_ckpt or a checkpoint signal write (named
        after the kernel's launch pid, which --same-pid keeps)."""
        self.lineage = lineage
        side = {"version": 1, "connection": conn, "identity": identity.hex(), "kernel_pid": lineage,
                "python": self.python, "created": time.time()}
        paths.write_private_json(paths.lineage_sidecar(lineage), side)

    def forget_lineage(self) -> None:
        """Removes the lineage sidecar when no image of that kernel needs it."""
        if self.lineage is None:
            return
        d = paths.image_dir()
        suffix = f"-{self.lineage}-"
        if not any(suffix in n and n.endswith(paths.IMAGE_SUFFIX) for n in os.listdir(d)):
            try:
                os.unlink(paths.lineage_sidecar(self.lineage, d))
            except FileNotFoundError:
                pass
