//! `AF_UNIX` sockets whose peer is another of the program's fds (a `socketpair`: asyncio's
//! self-pipe, multiprocessing, event loops; or a connection the program accepted from itself)
//! come back as one connected pair, with the bytes that were queued on each end queued there
//! again. A socket whose peer was closed comes back as a pair whose other end is closed: its
//! queued bytes are read, then end-of-file.
//!
//! Capture asks the kernel for the peer's inode over `NETLINK_SOCK_DIAG` (`unix_diag.rs`) and
//! looks for it among the program's fds. Without sock_diag, or when the peer is alive outside
//! the program, the socket is left to `sockets.rs` (a dead socket, as before).
//!
//! Queued bytes of a stream socket are read with `MSG_PEEK`, which leaves them queued: the
//! socket's peek offset (`SO_PEEK_OFF`) is set to 0 for the copy, so the peeks walk the whole
//! queue (one peek stops where the writer's credentials change), and then set back to what the
//! program had. Bytes that carry passed fds or credentials (`SCM_RIGHTS`, `SO_PASSCRED`) make
//! the checkpoint fail naming the fd: crac cannot save fds in flight.
//!
//! Datagram and `SOCK_SEQPACKET` sockets' queued messages are walked the same way, one whole
//! message a peek, and saved with their bounds (each a `u32` little-endian length and its
//! bytes).
//!
//! Limits: the program's peek offset and socket options (buffer sizes, `SO_PASSCRED`) are not
//! restored (the send buffer of an end that receives more than 64 KiB is raised); a message over
//! 4 MiB fails the checkpoint; empty messages at the end of a seqpacket queue whose peer is gone
//! are lost, and so are empty messages peeked before (by an earlier checkpoint, or by the
//! program at a peek offset: the kernel skips those when peeking at an offset); a restored pair has no addresses (`getsockname`/`getpeername` of a
//! connection that had a named server give nothing).

use std::collections::BTreeMap;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use crac_core::image::{FdKind, FdRecord};

use super::FdError;
use super::capture::Probe;
use super::sys;
use super::unix_diag::UnixDiag;

/// The socketpair end of `p` (an `AF_UNIX` socket of type `ty` that is not listening), or
/// `None` when it is not one: not connected, its peer alive outside the program, or no
/// sock_diag to ask.
pub(super) fn capture(p: &Probe, ty: i32, probes: &[Probe]) -> Result<Option<FdKind>, FdError> {
    let Ok(own) = u32::try_from(p.st.ino) else {
        return Ok(None);
    };
    let Ok(mut diag) = UnixDiag::open() else {
        return Ok(None);
    };
    let Ok(Some(peer)) = diag.peer(own) else {
        return Ok(None);
    };
    let in_program = peer != 0
        && probes.iter().any(|q| {
            q.st.file_type() == libc::S_IFSOCK
                && q.st.dev == p.st.dev
                && q.st.ino == u64::from(peer)
        });
    let closed =
        peer == 0 || matches!(diag.peer(peer), Err(e) if e.raw_os_error() == Some(libc::ENOENT));
    let (pair_id, first) = if in_program {
        (u64::from(own.min(peer)), own < peer)
    } else if closed {
        (u64::from(own), true)
    } else {
        return Ok(None);
    };
    let data = if ty == libc::SOCK_STREAM {
        queued(p.fd)?
    } else {
        queued_messages(p.fd, ty)?
    };
    Ok(Some(FdKind::SocketPair {
        pair_id,
        first,
        ty,
        flags: p.flags,
        data,
    }))
}

/// The bytes queued for reading on stream socket `fd`, left where they are.
fn queued(fd: i32) -> Result<Vec<u8>, FdError> {
    let want = sys::bytes_waiting(fd).map_err(|source| FdError::Inspect {
        fd,
        what: "bytes queued on the socket",
        source,
    })?;
    if want == 0 {
        return Ok(Vec::new());
    }
    with_peek_offset(fd, |fd| peek_all(fd, want))
}

/// Runs `peek` on `fd` with the socket's peek offset on and at 0, then gives the program its
/// own offset back.
fn with_peek_offset(
    fd: i32,
    peek: impl FnOnce(i32) -> Result<Vec<u8>, FdError>,
) -> Result<Vec<u8>, FdError> {
    let inspect = |source| FdError::Inspect {
        fd,
        what: "socket peek offset",
        source,
    };
    let peek_off = |v| sys::set_sockopt_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, v);
    let old = sys::sockopt_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF).map_err(inspect)?;
    peek_off(0).map_err(inspect)?;
    let bytes = peek(fd);
    let back = peek_off(old).map_err(inspect);
    let bytes = bytes?;
    back?;
    Ok(bytes)
}

/// The largest datagram crac saves (the kernel's own limit is the send buffer).
const MAX_MESSAGE: usize = 4 << 20;
/// The most queued messages crac saves on one socket.
const MAX_MESSAGES: usize = 1 << 20;

/// The messages queued for reading on datagram or seqpacket socket `fd`, left where they are,
/// each as a `u32` little-endian length and its bytes. With the peek offset on, each peek
/// returns the next whole message; the end is `EAGAIN` (a seqpacket socket whose peer is gone
/// reads 0 at the end instead, so there a 0 once every queued byte is seen is the end, and
/// empty messages after the last non-empty one are not saved).
fn queued_messages(fd: i32, ty: i32) -> Result<Vec<u8>, FdError> {
    let inspect = |source| FdError::Inspect {
        fd,
        what: "messages queued on the socket",
        source,
    };
    // A seqpacket socket counts every queued byte; a datagram socket only its first message's.
    let total = sys::bytes_waiting(fd).map_err(inspect)?;
    with_peek_offset(fd, |fd| {
        let mut out = Vec::new();
        let mut seen = 0usize;
        let mut buf = vec![0u8; MAX_MESSAGE];
        for _ in 0..MAX_MESSAGES {
            match sys::recv_peek(fd, &mut buf) {
                Ok((_, flags)) if flags & libc::MSG_CTRUNC != 0 => return Err(fds_in_flight(fd)),
                Ok((_, flags)) if flags & libc::MSG_TRUNC != 0 => {
                    return Err(inspect(io::Error::other(format!(
                        "a queued message is larger than {MAX_MESSAGE} bytes"
                    ))));
                }
                Ok((0, _)) if ty == libc::SOCK_SEQPACKET && seen >= total => return Ok(out),
                Ok((n, _)) => {
                    let len =
                        u32::try_from(n).map_err(|_| inspect(io::ErrorKind::InvalidData.into()))?;
                    out.extend_from_slice(&len.to_le_bytes());
                    out.extend_from_slice(&buf[..n]);
                    seen += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
                Err(e) => return Err(inspect(e)),
            }
        }
        Err(inspect(io::Error::other(format!(
            "more than {MAX_MESSAGES} messages are queued"
        ))))
    })
}

/// The messages of `data` as [`queued_messages`] wrote them.
fn messages(data: &[u8]) -> Option<Vec<&[u8]>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let len = usize::try_from(u32::from_le_bytes(rest.get(..4)?.try_into().ok()?)).ok()?;
        out.push(rest.get(4..4 + len)?);
        rest = &rest[4 + len..];
    }
    Some(out)
}

/// The error for bytes that carry fds or credentials.
fn fds_in_flight(fd: i32) -> FdError {
    FdError::Unsupported {
        fd,
        what: "a socket whose queued bytes carry file descriptors or credentials \
               (SCM_RIGHTS, SO_PASSCRED)"
            .into(),
        short: "fds in flight",
    }
}

/// Peeks `want` bytes from `fd`, whose peek offset is on and at 0.
fn peek_all(fd: i32, want: usize) -> Result<Vec<u8>, FdError> {
    let mut bytes = vec![0u8; want];
    let mut have = 0;
    while have < want {
        match sys::recv_peek(fd, &mut bytes[have..]) {
            Ok((_, flags)) if flags & libc::MSG_CTRUNC != 0 => return Err(fds_in_flight(fd)),
            Ok((0, _)) => break,
            Ok((n, _)) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(source) => {
                return Err(FdError::Inspect {
                    fd,
                    what: "bytes queued on the socket",
                    source,
                });
            }
        }
    }
    if have != want {
        return Err(FdError::Inspect {
            fd,
            what: "bytes queued on the socket",
            source: io::Error::other(format!("{want} bytes are queued but {have} could be read")),
        });
    }
    Ok(bytes)
}

/// Recreates every socketpair of `records`: one `(description, fd)` per end the program held,
/// flags set, each end's saved bytes queued on it again, ends no record holds closed.
pub(super) fn restore(records: &[FdRecord]) -> Result<Vec<(u32, OwnedFd)>, FdError> {
    let mut pairs: BTreeMap<u64, Vec<&FdRecord>> = BTreeMap::new();
    for r in records {
        if let FdKind::SocketPair { pair_id, .. } = r.kind {
            pairs.entry(pair_id).or_default().push(r);
        }
    }
    let mut made = Vec::new();
    for ends in pairs.values() {
        restore_one(ends, &mut made)?;
    }
    Ok(made)
}

/// Recreates one pair from the records of its ends.
fn restore_one(records: &[&FdRecord], made: &mut Vec<(u32, OwnedFd)>) -> Result<(), FdError> {
    let Some(FdKind::SocketPair { ty, .. }) = records.first().map(|r| &r.kind) else {
        return Ok(());
    };
    let fd0 = records[0].fd;
    let err = |fd| {
        move |source| FdError::Recreate {
            fd,
            what: "socketpair",
            source,
        }
    };
    let (a, b) = sys::socketpair(*ty).map_err(err(fd0))?;
    // Index 0: the `first` end.
    let sockets = [&a, &b];
    let mut description: [Option<u32>; 2] = [None, None];
    for r in records {
        let FdKind::SocketPair {
            first,
            ty: t,
            flags,
            data,
            ..
        } = &r.kind
        else {
            continue;
        };
        let side = usize::from(!first);
        match description[side] {
            Some(d) if d == r.description => continue,
            Some(_) => {
                return Err(FdError::BadRecord {
                    fd: r.fd,
                    why: "two descriptions for one end of a socketpair".into(),
                });
            }
            None if t != ty => {
                return Err(FdError::BadRecord {
                    fd: r.fd,
                    why: "the ends of a socketpair have different types".into(),
                });
            }
            None => description[side] = Some(r.description),
        }
        // What was queued for reading on this end is written into the other.
        let other = sockets[1 - side].as_raw_fd();
        if *t == libc::SOCK_STREAM {
            send_all(other, data).map_err(err(r.fd))?;
        } else {
            let Some(messages) = messages(data) else {
                return Err(FdError::BadRecord {
                    fd: r.fd,
                    why: "its queued messages are cut short".into(),
                });
            };
            for m in messages {
                send_message(other, m).map_err(err(r.fd))?;
            }
        }
        let fd = sys::dup_at_least(sockets[side].as_raw_fd(), 0).map_err(err(r.fd))?;
        sys::set_status_flags(fd.as_raw_fd(), *flags).map_err(err(r.fd))?;
        made.push((r.description, fd));
    }
    // `a` and `b` close here: an end no record holds is gone, as its peer was.
    Ok(())
}

/// Sends one message on datagram or seqpacket socket `fd` without blocking.
fn send_message(fd: i32, m: &[u8]) -> io::Result<()> {
    loop {
        match sys::send_nowait(fd, m) {
            Ok(n) if n == m.len() => return Ok(()),
            Ok(_) => return Err(io::ErrorKind::WriteZero.into()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `data` into stream socket `fd` without blocking. The send buffer is raised
/// first when the bytes may not fit the default one (a program may have raised its own).
fn send_all(fd: i32, mut data: &[u8]) -> io::Result<()> {
    if data.len() > 64 * 1024 {
        let want = i32::try_from(data.len().saturating_mul(2)).unwrap_or(i32::MAX);
        // Best effort: the kernel caps it; a write that still does not fit fails below.
        let _ = sys::set_sockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, want);
    }
    while !data.is_empty() {
        match sys::send_nowait(fd, data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
