//! Which socket an `AF_UNIX` socket is connected to, asked of the kernel over
//! `NETLINK_SOCK_DIAG` (`unix_diag_req` with `UDIAG_SHOW_PEER`, one exact lookup by inode).
//!
//! The messages are built and parsed here as plain bytes in the machine's byte order (netlink
//! is host-endian); only the socket calls are in `sys`.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use super::sys;

/// `SOCK_DIAG_BY_FAMILY`: the request and reply message type.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `NLMSG_ERROR`.
const NLMSG_ERROR: u16 = 2;
/// `NLM_F_REQUEST`.
const NLM_F_REQUEST: u16 = 1;
/// `UDIAG_SHOW_PEER`.
const UDIAG_SHOW_PEER: u32 = 4;
/// `UNIX_DIAG_PEER`: the attribute holding the peer's inode.
const UNIX_DIAG_PEER: u16 = 2;
/// `INET_DIAG_NOCOOKIE`: the lookup is by inode alone.
const NO_COOKIE: u32 = u32::MAX;
/// `sizeof(struct nlmsghdr)`.
const NLMSG_HDR: usize = 16;
/// `sizeof(struct unix_diag_req)`.
const REQ_LEN: usize = 24;
/// `sizeof(struct unix_diag_msg)`.
const MSG_LEN: usize = 16;

/// A `NETLINK_SOCK_DIAG` socket.
pub(super) struct UnixDiag {
    sock: OwnedFd,
    seq: u32,
}

impl UnixDiag {
    /// Opens the netlink socket; fails where the kernel has no sock_diag (then the caller
    /// treats connected sockets as it did without it).
    pub fn open() -> io::Result<Self> {
        let sock = sys::socket(libc::AF_NETLINK, libc::SOCK_DGRAM, libc::NETLINK_SOCK_DIAG)?;
        Ok(Self { sock, seq: 0 })
    }

    /// The inode of the socket that the `AF_UNIX` socket with inode `ino` is connected to:
    /// `Some(0)` when that peer has been closed (the kernel no longer names it), `None` when it
    /// is not connected. `ENOENT` when no socket has inode `ino` (it was closed).
    pub fn peer(&mut self, ino: u32) -> io::Result<Option<u32>> {
        self.seq = self.seq.wrapping_add(1);
        let req = request(ino, self.seq);
        let sent = sys::send_nowait(self.sock.as_raw_fd(), &req)?;
        if sent != req.len() {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let mut buf = vec![0u8; 8192];
        loop {
            let n = match sys::recv(self.sock.as_raw_fd(), &mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => r?,
            };
            if let Some(answer) = parse(&buf[..n], ino, self.seq)? {
                return Ok(answer);
            }
        }
    }
}

/// The request: a netlink header and a `unix_diag_req` for inode `ino`, any state, showing
/// the peer.
fn request(ino: u32, seq: u32) -> [u8; NLMSG_HDR + REQ_LEN] {
    let mut m = [0u8; NLMSG_HDR + REQ_LEN];
    let len = u32::try_from(m.len()).unwrap_or(u32::MAX);
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // nlmsg_pid 0: to the kernel.
    let r = &mut m[NLMSG_HDR..];
    r[0] = u8::try_from(libc::AF_UNIX).unwrap_or(1);
    // sdiag_protocol 0, pad 0; udiag_states: every state.
    r[4..8].copy_from_slice(&u32::MAX.to_ne_bytes());
    r[8..12].copy_from_slice(&ino.to_ne_bytes());
    r[12..16].copy_from_slice(&UDIAG_SHOW_PEER.to_ne_bytes());
    r[16..20].copy_from_slice(&NO_COOKIE.to_ne_bytes());
    r[20..24].copy_from_slice(&NO_COOKIE.to_ne_bytes());
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn bad() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "malformed sock_diag reply")
}

/// Reads one datagram of replies: `Some(answer)` for the reply to request `seq` about `ino`
/// (see [`UnixDiag::peer`]), `None` when it held none (a stale reply to skip), an error for a
/// netlink error or a malformed message.
fn parse(mut b: &[u8], ino: u32, seq: u32) -> io::Result<Option<Option<u32>>> {
    while b.len() >= NLMSG_HDR {
        let len = usize::try_from(u32_at(b, 0).ok_or_else(bad)?).map_err(|_| bad())?;
        if len < NLMSG_HDR || len > b.len() {
            return Err(bad());
        }
        let ty = u16_at(b, 4).ok_or_else(bad)?;
        let body = &b[NLMSG_HDR..len];
        let ours = u32_at(b, 8) == Some(seq);
        b = b.get(len.next_multiple_of(4)..).unwrap_or_default();
        if !ours {
            continue;
        }
        if ty == NLMSG_ERROR {
            let code = i32::from_ne_bytes(u32_at(body, 0).ok_or_else(bad)?.to_ne_bytes());
            return Err(io::Error::from_raw_os_error(
                code.checked_neg().ok_or_else(bad)?,
            ));
        }
        if ty != SOCK_DIAG_BY_FAMILY || body.len() < MSG_LEN || u32_at(body, 4) != Some(ino) {
            continue;
        }
        let mut attrs = &body[MSG_LEN..];
        while attrs.len() >= 4 {
            let alen = usize::from(u16_at(attrs, 0).ok_or_else(bad)?);
            if alen < 4 || alen > attrs.len() {
                return Err(bad());
            }
            if u16_at(attrs, 2) == Some(UNIX_DIAG_PEER) {
                return Ok(Some(Some(u32_at(attrs, 4).ok_or_else(bad)?)));
            }
            attrs = attrs.get(alen.next_multiple_of(4)..).unwrap_or_default();
        }
        return Ok(Some(None));
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::net::UnixStream;

    fn ino(s: &UnixStream) -> u32 {
        let m = std::fs::metadata(format!("/proc/self/fd/{}", s.as_raw_fd())).unwrap();
        u32::try_from(m.ino()).unwrap()
    }

    #[test]
    fn finds_the_peer_of_each_end_and_a_closed_peer() {
        let Ok(mut diag) = UnixDiag::open() else {
            eprintln!("no sock_diag here; nothing to check");
            return;
        };
        let (a, b) = UnixStream::pair().unwrap();
        let (ia, ib) = (ino(&a), ino(&b));
        assert_eq!(diag.peer(ia).unwrap(), Some(ib));
        assert_eq!(diag.peer(ib).unwrap(), Some(ia));
        drop(b);
        assert_ne!(
            diag.peer(ia).unwrap(),
            Some(ib),
            "a closed peer is not named"
        );
        let gone = diag.peer(ib).unwrap_err();
        assert_eq!(gone.raw_os_error(), Some(libc::ENOENT));
        let lone = std::os::unix::net::UnixDatagram::unbound().unwrap();
        let m = std::fs::metadata(format!("/proc/self/fd/{}", lone.as_raw_fd())).unwrap();
        let lone_ino = u32::try_from(m.ino()).unwrap();
        assert_eq!(diag.peer(lone_ino).unwrap(), None, "not connected");
    }

    #[test]
    fn garbage_replies_are_errors_not_panics() {
        assert!(parse(&[0xff; 40], 1, 1).is_err());
        assert_eq!(parse(&[0; 8], 1, 1).unwrap(), None);
        let mut err = vec![0u8; 36];
        err[0..4].copy_from_slice(&36u32.to_ne_bytes());
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        err[8..12].copy_from_slice(&7u32.to_ne_bytes());
        err[16..20].copy_from_slice(&(-libc::ENOENT).to_ne_bytes());
        assert_eq!(
            parse(&err, 1, 7).unwrap_err().raw_os_error(),
            Some(libc::ENOENT)
        );
        assert_eq!(parse(&err, 1, 8).unwrap(), None, "another request's reply");
    }
}
