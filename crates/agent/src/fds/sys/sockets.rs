//! The system calls behind socket capture and restore.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use super::{check, owned};

/// An `int` socket option.
pub fn sockopt_int(fd: RawFd, level: i32, opt: i32) -> io::Result<i32> {
    let mut v: libc::c_int = 0;
    let mut len = libc::socklen_t::try_from(size_of::<libc::c_int>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `v` and `len` are valid for writes, `len` holding the size of `v`, so the kernel
    // writes at most that much.
    check(unsafe { libc::getsockopt(fd, level, opt, (&raw mut v).cast(), &mut len) })?;
    Ok(v)
}

/// Sets an `int` socket option.
pub fn set_sockopt_int(fd: RawFd, level: i32, opt: i32, v: i32) -> io::Result<()> {
    let len = libc::socklen_t::try_from(size_of::<libc::c_int>())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `v` is valid for reads of `len` bytes.
    check(unsafe { libc::setsockopt(fd, level, opt, (&raw const v).cast(), len) }).map(drop)
}

/// `getsockname`: the bound address as the kernel returns it (`len` bytes of a sockaddr).
pub fn sockname(fd: RawFd) -> io::Result<Vec<u8>> {
    let mut ss = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let cap = size_of::<libc::sockaddr_storage>();
    let mut len =
        libc::socklen_t::try_from(cap).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `ss` has room for `len` bytes and `len` is valid for writes.
    check(unsafe { libc::getsockname(fd, ss.as_mut_ptr().cast(), &mut len) })?;
    let len = usize::try_from(len).unwrap_or(cap).min(cap);
    // SAFETY: `ss` was zeroed, so all its bytes are initialised; `len` is capped at its size.
    let bytes = unsafe { std::slice::from_raw_parts(ss.as_ptr().cast::<u8>(), len) };
    Ok(bytes.to_vec())
}

/// `socket(domain, ty | SOCK_CLOEXEC, protocol)`.
pub fn socket(domain: i32, ty: i32, protocol: i32) -> io::Result<OwnedFd> {
    // SAFETY: socket creates a new fd; no memory is passed.
    owned(unsafe { libc::socket(domain, ty | libc::SOCK_CLOEXEC, protocol) })
}

/// `socketpair(AF_UNIX, ty | SOCK_CLOEXEC)`.
pub fn socketpair(ty: i32) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: `fds` has room for the two numbers socketpair writes on success.
    check(unsafe {
        libc::socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr())
    })?;
    // SAFETY: socketpair succeeded: both numbers are new fds owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// `bind` to the raw sockaddr bytes `addr`.
pub fn bind(fd: RawFd, addr: &[u8]) -> io::Result<()> {
    let mut ss = MaybeUninit::<libc::sockaddr_storage>::zeroed();
    let len = addr.len().min(size_of::<libc::sockaddr_storage>());
    // SAFETY: `ss` has room for a sockaddr_storage and `len` is capped at its size; the source
    // slice is valid for `len` bytes and the regions do not overlap.
    unsafe { std::ptr::copy_nonoverlapping(addr.as_ptr(), ss.as_mut_ptr().cast::<u8>(), len) };
    let len =
        libc::socklen_t::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `ss` holds `len` initialised bytes of a sockaddr, valid for the call.
    check(unsafe { libc::bind(fd, ss.as_ptr().cast(), len) }).map(drop)
}

/// `listen(fd, backlog)`.
pub fn listen(fd: RawFd, backlog: i32) -> io::Result<()> {
    // SAFETY: listen takes no memory.
    check(unsafe { libc::listen(fd, backlog) }).map(drop)
}

/// `send(fd, buf, MSG_DONTWAIT | MSG_NOSIGNAL)`.
pub fn send_nowait(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for reads of its length.
    let n = unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// `recvmsg(fd, buf, MSG_PEEK | MSG_DONTWAIT)` with no room for control messages: `(bytes,
/// msg_flags)`. The bytes stay queued; `MSG_CTRUNC` in the flags says control data (passed
/// fds, credentials) came with them and was not taken.
pub fn recv_peek(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, i32)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: an all-zero msghdr is valid (no name, no control buffer).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    // SAFETY: `msg` points at one iovec describing `buf`, valid for writes of its length, and
    // asks for no name or control data, so the kernel writes nothing else of ours.
    let n = unsafe { libc::recvmsg(fd, &raw mut msg, libc::MSG_PEEK | libc::MSG_DONTWAIT) };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    Ok((n, msg.msg_flags))
}

/// `recv(fd, buf, 0)`: blocks until a message comes.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of its length, which is all the kernel writes.
    let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}
