"""Keeps libzmq's threads stoppable by crac.

crac stops every thread of a process for a checkpoint with SIGRTMAX. libzmq's I/O and reaper
threads block every signal when they start (``sigfillset`` then ``pthread_sigmask``), only for
steadier latencies, so a process using zmq could never be checkpointed. Before any zmq context
exists, the inner kernel points libzmq's own ``pthread_sigmask`` import (its GOT slot) at libc's
``sched_yield``, which takes no arguments and returns 0: the threads then keep the signal mask
they were created with (the Python thread's, which blocks nothing). libzmq handles ``EINTR``
everywhere, and a process-directed signal goes to the main thread first, as before.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct

SHT_RELA = 4
R_X86_64_GLOB_DAT = 6
R_X86_64_JUMP_SLOT = 7


class PatchError(RuntimeError):
    """libzmq's signal-mask import could not be redirected."""


def _sections(data: bytes) -> list[tuple[str, int, int, int, int, int]]:
    """(name, type, offset, size, link, entsize) of every section of an ELF64 file."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise PatchError("not a little-endian ELF64 file")
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    raw = []
    for i in range(shnum):
        name, typ, _flags, _addr, off, size, link, _info, _align, entsize = struct.unpack_from(
            "<IIQQQQIIQQ", data, shoff + i * shentsize
        )
        raw.append((name, typ, off, size, link, entsize))
    strtab_off = raw[shstrndx][2]

    def name_at(o: int) -> str:
        end = data.index(b"\0", strtab_off + o)
        return data[strtab_off + o : end].decode()

    return [(name_at(n), t, off, size, link, es) for n, t, off, size, link, es in raw]


def got_slots(path: str, symbol: str) -> list[int]:
    """The link-time addresses of the GOT slots through which the library at path calls
    symbol (its JUMP_SLOT and GLOB_DAT relocations)."""
    with open(path, "rb") as f:
        data = f.read()
    secs = _sections(data)
    slots = []
    for _name, typ, off, size, link, entsize in secs:
        if typ != SHT_RELA or entsize != 24:
            continue
        _sn, _st, sym_off, _ss, str_link, sym_es = secs[link]
        str_off = secs[str_link][2]
        for r in range(off, off + size, 24):
            r_offset, r_info, _addend = struct.unpack_from("<QQq", data, r)
            if r_info & 0xFFFFFFFF not in (R_X86_64_JUMP_SLOT, R_X86_64_GLOB_DAT):
                continue
            st_name = struct.unpack_from("<I", data, sym_off + (r_info >> 32) * sym_es)[0]
            end = data.index(b"\0", str_off + st_name)
            if data[str_off + st_name : end].decode() == symbol:
                slots.append(r_offset)
    return slots


def _loaded(fragment: str) -> tuple[str, int] | None:
    """The path and load base of the loaded library whose file name contains fragment."""
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 6 and fragment in os.path.basename(parts[5]) and parts[2] == "00000000":
                return parts[5], int(parts[0].split("-")[0], 16)
    return None


def _perms_at(addr: int) -> int:
    with open("/proc/self/maps") as f:
        for line in f:
            lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
            if lo <= addr < hi:
                p = line.split()[1]
                return (mmap.PROT_READ if "r" in p else 0) | (mmap.PROT_WRITE if "w" in p else 0)
    raise PatchError(f"address {addr:#x} is not mapped")


def unblock_for_libzmq() -> int:
    """Redirects libzmq's pthread_sigmask to a no-op; returns how many slots were written.
    Must run after `import zmq` and before the first zmq context starts its threads."""
    import zmq  # noqa: F401  (loads libzmq)

    found = _loaded("libzmq")
    if found is None:
        # pyzmq built with libzmq linked into its extension module.
        found = _loaded("_zmq")
    if found is None:
        raise PatchError("libzmq is not loaded in this process")
    path, base = found
    libc = ctypes.CDLL(None, use_errno=True)
    target = ctypes.cast(libc.sched_yield, ctypes.c_void_p).value
    mprotect = libc.mprotect
    mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = mmap.PAGESIZE
    slots = got_slots(path, "pthread_sigmask")
    for off in slots:
        addr = base + off
        perms = _perms_at(addr)
        start = addr & ~(page - 1)
        if not perms & mmap.PROT_WRITE:
            if mprotect(start, page, perms | mmap.PROT_WRITE) != 0:
                raise PatchError(f"mprotect: {os.strerror(ctypes.get_errno())}")
        ctypes.c_uint64.from_address(addr).value = target
        if not perms & mmap.PROT_WRITE:
            mprotect(start, page, perms)
    return len(slots)
