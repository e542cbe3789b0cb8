//! Sockets: listening ones are bound again to their address; `AF_UNIX` sockets connected to
//! another of the program's fds (or whose peer was closed) come back as socketpairs
//! (`socketpairs.rs`); every other socket comes back as a dead one (one end of a socketpair
//! whose peer is closed); the program's connection to crac's agent comes back holding the reply
//! it waits for.
//!
//! `IPV6_V6ONLY` is not in the record: an IPv6 listener is bound with the system's default, and
//! if its port is then taken for IPv4 (the program had a separate IPv4 listener on it, which
//! restore binds first), bound again as IPv6-only.
//!
//! Limits: connections waiting in a listening socket's queue at checkpoint time are lost (their
//! clients see a reset); the listen backlog is restored as 128 (the saved record has no field
//! for it); a dead socket is an `AF_UNIX` socket whatever its domain was; a bound but not
//! listening socket (a UDP server) comes back dead, not bound.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::Path;

use crac_core::image::FdKind;

use super::FdError;
use super::capture::Probe;
use super::{socketpairs, sys};

/// The backlog a re-bound listening socket gets.
const BACKLOG: i32 = 128;

/// A socket of the program; `probes` are all the program's fds (to find a socketpair's peer).
pub(super) fn capture(p: &Probe, probes: &[Probe]) -> Result<FdKind, FdError> {
    let opt = |what: &'static str, opt| {
        sys::sockopt_int(p.fd, libc::SOL_SOCKET, opt).map_err(|source| FdError::Inspect {
            fd: p.fd,
            what,
            source,
        })
    };
    let domain = opt("socket domain", libc::SO_DOMAIN)?;
    let ty = opt("socket type", libc::SO_TYPE)?;
    if opt("socket state", libc::SO_ACCEPTCONN)? != 0 {
        let protocol = opt("socket protocol", libc::SO_PROTOCOL)?;
        let addr = sys::sockname(p.fd).map_err(|source| FdError::Inspect {
            fd: p.fd,
            what: "socket address",
            source,
        })?;
        return Ok(FdKind::ListenSocket {
            domain,
            ty,
            protocol,
            addr,
            flags: p.flags,
        });
    }
    if domain == libc::AF_UNIX
        && let Some(end) = socketpairs::capture(p, ty, probes)?
    {
        return Ok(end);
    }
    Ok(FdKind::DeadSocket {
        domain,
        ty,
        flags: p.flags,
    })
}

/// The filesystem path of a pathname `AF_UNIX` address (`None` for unnamed and abstract ones).
fn unix_path(addr: &[u8]) -> Option<&Path> {
    let family = size_of::<libc::sa_family_t>();
    let path = addr.get(family..)?;
    if path.first().is_none_or(|&b| b == 0) {
        return None;
    }
    let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
    Some(Path::new(std::ffi::OsStr::from_bytes(&path[..end])))
}

/// Binds a new socket to the saved address and listens on it.
pub(super) fn restore_listen(
    fd: i32,
    domain: i32,
    ty: i32,
    protocol: i32,
    addr: &[u8],
) -> Result<OwnedFd, FdError> {
    let err = |source| FdError::Recreate {
        fd,
        what: "listening socket",
        source,
    };
    let sock = sys::socket(domain, ty, protocol).map_err(err)?;
    match domain {
        libc::AF_INET | libc::AF_INET6 => {
            sys::set_sockopt_int(sock.as_raw_fd(), libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)
                .map_err(err)?;
        }
        libc::AF_UNIX => {
            // The old process's socket file stays behind; only a socket file is removed.
            if let Some(path) = unix_path(addr)
                && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket())
            {
                std::fs::remove_file(path).map_err(err)?;
            }
        }
        _ => {}
    }
    let sock = match sys::bind(sock.as_raw_fd(), addr) {
        Ok(()) => sock,
        Err(e) if domain == libc::AF_INET6 && e.raw_os_error() == Some(libc::EADDRINUSE) => {
            // The port is taken for IPv4 (by the program's own IPv4 listener, restored first):
            // the IPv6 socket was IPV6_V6ONLY. A socket cannot be bound twice: start again.
            let again = sys::socket(domain, ty, protocol).map_err(err)?;
            let fd = again.as_raw_fd();
            sys::set_sockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1).map_err(err)?;
            sys::set_sockopt_int(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1).map_err(err)?;
            sys::bind(fd, addr).map_err(err)?;
            again
        }
        Err(e) => return Err(err(e)),
    };
    sys::listen(sock.as_raw_fd(), BACKLOG).map_err(err)?;
    Ok(sock)
}

/// One end of a socketpair of type `ty` whose other end is closed.
pub(super) fn restore_dead(fd: i32, ty: i32) -> Result<OwnedFd, FdError> {
    let pair = sys::socketpair(ty).or_else(|_| sys::socketpair(libc::SOCK_STREAM));
    let (mine, _gone) = pair.map_err(|source| FdError::Recreate {
        fd,
        what: "dead socket",
        source,
    })?;
    Ok(mine)
}

/// A stream socket that reads `reply`, then end-of-file.
pub(super) fn restore_reply(fd: i32, reply: &[u8]) -> Result<OwnedFd, FdError> {
    let err = |source| FdError::Recreate {
        fd,
        what: "crac_checkpoint() connection",
        source,
    };
    let (mine, other) = sys::socketpair(libc::SOCK_STREAM).map_err(err)?;
    let mut rest = reply;
    while !rest.is_empty() {
        match sys::send_nowait(other.as_raw_fd(), rest) {
            Ok(0) => return Err(err(std::io::ErrorKind::WriteZero.into())),
            Ok(n) => rest = &rest[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(e)),
        }
    }
    drop(other);
    Ok(mine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_paths() {
        let mut a = 1u16.to_ne_bytes().to_vec();
        assert_eq!(unix_path(&a), None, "unnamed");
        a.extend_from_slice(b"/tmp/x.sock\0\0");
        assert_eq!(unix_path(&a), Some(Path::new("/tmp/x.sock")));
        let mut abs = 1u16.to_ne_bytes().to_vec();
        abs.extend_from_slice(b"\0name");
        assert_eq!(unix_path(&abs), None, "abstract");
    }
}
