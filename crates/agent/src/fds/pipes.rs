//! Pipes and FIFOs, saved natively (not promoted to socketpairs as DMTCP does).
//!
//! Capture copies the bytes in flight with `tee` into a private pipe as large as the program's,
//! which leaves them where they were: nothing to put back, and no race with a writer outside
//! the program. Only when that cannot be done (the private pipe cannot be made large enough,
//! e.g. over the user's pipe-buffer quota) are the bytes drained through a new non-blocking
//! description of the pipe (opened by `/proc/self/fd/N`, so the program's own status flags are
//! never touched), and [`refill`] writes them back when the program continues; a writer outside
//! the program that writes during the checkpoint then gets its bytes ahead of the drained ones.
//!
//! A FIFO comes back as an anonymous pipe: the name is not reopened. A FIFO opened read-write
//! is refused.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;

use crac_core::image::{FdKind, FdRecord};

use super::FdError;
use super::capture::Probe;
use super::sys;

/// A pipe end, without its data yet (filled by [`finish`]).
pub(super) fn capture(p: &Probe) -> Result<FdKind, FdError> {
    let read_end = match p.flags & libc::O_ACCMODE {
        libc::O_RDONLY => true,
        libc::O_WRONLY => false,
        _ => {
            return Err(FdError::Unsupported {
                fd: p.fd,
                what: format!("a FIFO opened for reading and writing ({})", p.link_lossy()),
                short: "read-write FIFOs",
            });
        }
    };
    let capacity = sys::pipe_capacity(p.fd).map_err(|source| FdError::Inspect {
        fd: p.fd,
        what: "pipe capacity",
        source,
    })?;
    Ok(FdKind::Pipe {
        pipe_id: p.st.ino,
        read_end,
        flags: p.flags,
        capacity,
        data: Vec::new(),
        peer_outside: false,
    })
}

/// Marks pipes with only one end in the program and saves the bytes in flight on the first
/// read end of each pipe. Returns what had to be drained (to give back on resume).
pub(super) fn finish(records: &mut [FdRecord]) -> Result<Vec<(i32, Vec<u8>)>, FdError> {
    // pipe_id -> (has a read end, has a write end, index of the first read end)
    let mut pipes: HashMap<u64, (bool, bool, Option<usize>)> = HashMap::new();
    for (i, r) in records.iter().enumerate() {
        if let FdKind::Pipe {
            pipe_id, read_end, ..
        } = r.kind
        {
            let e = pipes.entry(pipe_id).or_default();
            if read_end {
                e.0 = true;
                e.2 = e.2.or(Some(i));
            } else {
                e.1 = true;
            }
        }
    }
    let mut drained: Vec<(i32, Vec<u8>)> = Vec::new();
    for (i, r) in records.iter_mut().enumerate() {
        let fd = r.fd;
        let FdKind::Pipe {
            pipe_id,
            capacity,
            data,
            peer_outside,
            ..
        } = &mut r.kind
        else {
            continue;
        };
        let (has_read, has_write, first_read) = pipes[pipe_id];
        *peer_outside = !(has_read && has_write);
        if first_read == Some(i) {
            *data = match peek(fd, *capacity) {
                Some(bytes) => bytes,
                None => {
                    let bytes = match drain(fd) {
                        Ok(b) => b,
                        Err(e) => {
                            // The capture fails: give back what was already taken. A refill that
                            // fails too cannot be helped; the first error is the one to report.
                            for (fd, bytes) in &drained {
                                let _ = refill(*fd, bytes);
                            }
                            return Err(e);
                        }
                    };
                    if !bytes.is_empty() {
                        drained.push((fd, bytes.clone()));
                    }
                    bytes
                }
            };
        }
    }
    Ok(drained)
}

/// The bytes waiting in the pipe whose read end is `fd`, copied with `tee` so they stay there;
/// `None` when they cannot all be copied that way.
fn peek(fd: i32, capacity: u32) -> Option<Vec<u8>> {
    let (r, w) = sys::pipe().ok()?;
    sys::set_pipe_capacity(w.as_raw_fd(), capacity).ok()?;
    let waiting = usize::try_from(capacity).ok()?;
    let copied = match sys::tee(fd, w.as_raw_fd(), waiting) {
        Ok(n) => n,
        // Empty, with writers still open.
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => 0,
        Err(_) => return None,
    };
    drop(w);
    let mut bytes = Vec::with_capacity(copied);
    let mut buf = vec![0u8; 65536];
    loop {
        match sys::read(r.as_raw_fd(), &mut buf) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    // tee copies whole pipe buffers while the private pipe has room; if it had too little, fall
    // back to draining rather than save a prefix.
    let left = sys::bytes_waiting(fd).ok()?;
    (left == bytes.len()).then_some(bytes)
}

/// Reads every byte waiting in the pipe whose read end is `fd` through a new non-blocking
/// description, so the program's flags stay as they are.
fn drain(fd: i32) -> Result<Vec<u8>, FdError> {
    let err = |source| FdError::ReadPipe { fd, source };
    let proc_path = format!("/proc/self/fd/{fd}");
    let reader =
        sys::open(Path::new(&proc_path), libc::O_RDONLY | libc::O_NONBLOCK).map_err(err)?;
    let mut bytes = Vec::new();
    let mut buf = vec![0u8; 65536];
    loop {
        match sys::read(reader.as_raw_fd(), &mut buf) {
            Ok(0) => return Ok(bytes),
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => return Ok(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(err(e)),
        }
    }
}

/// Writes drained bytes back into the pipe whose read end is `fd`.
pub(super) fn refill(fd: i32, bytes: &[u8]) -> Result<(), FdError> {
    let err = |source| FdError::Refill {
        fd,
        len: bytes.len(),
        source,
    };
    let proc_path = format!("/proc/self/fd/{fd}");
    let writer =
        sys::open(Path::new(&proc_path), libc::O_WRONLY | libc::O_NONBLOCK).map_err(err)?;
    sys::write_all(writer.as_raw_fd(), bytes).map_err(err)
}

/// One pipe to recreate: its records' indexes.
struct PipePlan<'a> {
    records: Vec<&'a FdRecord>,
}

/// Recreates every pipe of `records`: one `(description, fd)` per pipe description, flags set,
/// saved bytes written back, ends the program did not hold closed.
pub(super) fn restore(records: &[FdRecord]) -> Result<Vec<(u32, OwnedFd)>, FdError> {
    let mut plans: BTreeMap<u64, PipePlan<'_>> = BTreeMap::new();
    for r in records {
        if let FdKind::Pipe { pipe_id, .. } = r.kind {
            plans
                .entry(pipe_id)
                .or_insert_with(|| PipePlan {
                    records: Vec::new(),
                })
                .records
                .push(r);
        }
    }
    let mut made = Vec::new();
    for plan in plans.values() {
        restore_one(plan, &mut made)?;
    }
    Ok(made)
}

/// Recreates one pipe.
fn restore_one(plan: &PipePlan<'_>, made: &mut Vec<(u32, OwnedFd)>) -> Result<(), FdError> {
    let first = plan.records[0].fd;
    let err = |fd| {
        move |source| FdError::Recreate {
            fd,
            what: "pipe",
            source,
        }
    };
    let (r, w) = sys::pipe().map_err(err(first))?;
    let mut capacity = 0;
    let mut data: Vec<u8> = Vec::new();
    for rec in &plan.records {
        if let FdKind::Pipe {
            capacity: c,
            data: d,
            ..
        } = &rec.kind
        {
            capacity = capacity.max(*c);
            data.extend_from_slice(d);
        }
    }
    if capacity > 0 {
        sys::set_pipe_capacity(w.as_raw_fd(), capacity).map_err(err(first))?;
    }
    if !data.is_empty() {
        if data.len() > usize::try_from(capacity).unwrap_or(usize::MAX) {
            return Err(FdError::BadRecord {
                fd: first,
                why: format!("{} bytes saved in a pipe of {capacity}", data.len()),
            });
        }
        sys::set_status_flags(w.as_raw_fd(), libc::O_WRONLY | libc::O_NONBLOCK)
            .map_err(err(first))?;
        sys::write_all(w.as_raw_fd(), &data).map_err(err(first))?;
    }
    // One fd per description: the pipe's own ends for the first description of each side, a
    // new description through /proc for any further one (a FIFO opened twice).
    let mut ends: [Option<&OwnedFd>; 2] = [Some(&r), Some(&w)];
    let mut seen: Vec<u32> = Vec::new();
    for rec in &plan.records {
        let FdKind::Pipe {
            read_end, flags, ..
        } = rec.kind
        else {
            continue;
        };
        if seen.contains(&rec.description) {
            continue;
        }
        seen.push(rec.description);
        let side = usize::from(!read_end);
        let src = if read_end { &r } else { &w };
        let fd = match ends[side].take() {
            Some(end) => sys::dup_at_least(end.as_raw_fd(), 0),
            None => {
                let mode = if read_end {
                    libc::O_RDONLY
                } else {
                    libc::O_WRONLY
                };
                let proc_path = format!("/proc/self/fd/{}", src.as_raw_fd());
                sys::open(Path::new(&proc_path), mode | libc::O_NONBLOCK)
            }
        }
        .map_err(err(rec.fd))?;
        sys::set_status_flags(fd.as_raw_fd(), flags).map_err(err(rec.fd))?;
        made.push((rec.description, fd));
    }
    // `r` and `w` close here: an end no record holds is gone, as with its peer outside.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn fill(w: &OwnedFd, n: usize) -> Vec<u8> {
        let bytes: Vec<u8> = (0..n).map(|i| u8::try_from(i % 251).unwrap()).collect();
        for chunk in bytes.chunks(1000) {
            sys::write_all(w.as_raw_fd(), chunk).unwrap();
        }
        bytes
    }

    fn pipe() -> (std::fs::File, OwnedFd) {
        let (r, w) = sys::pipe().unwrap();
        (std::fs::File::from(r), w)
    }

    #[test]
    fn peek_copies_a_large_pipe_and_leaves_it_as_it_was() {
        let (mut r, w) = pipe();
        sys::set_pipe_capacity(w.as_raw_fd(), 1 << 20).unwrap();
        let capacity = sys::pipe_capacity(r.as_raw_fd()).unwrap();
        let bytes = fill(&w, 300_000);
        assert_eq!(peek(r.as_raw_fd(), capacity).as_deref(), Some(&bytes[..]));
        drop(w);
        let mut left = Vec::new();
        r.read_to_end(&mut left).unwrap();
        assert_eq!(left, bytes, "tee consumed nothing");
    }

    #[test]
    fn peek_of_an_empty_pipe_is_empty() {
        let (r, w) = pipe();
        let capacity = sys::pipe_capacity(r.as_raw_fd()).unwrap();
        assert_eq!(peek(r.as_raw_fd(), capacity), Some(Vec::new()));
        drop(w);
        assert_eq!(
            peek(r.as_raw_fd(), capacity),
            Some(Vec::new()),
            "no writers"
        );
    }

    #[test]
    fn peek_refuses_a_private_pipe_too_small() {
        let (r, w) = pipe();
        sys::set_pipe_capacity(w.as_raw_fd(), 1 << 18).unwrap();
        fill(&w, 200_000);
        assert_eq!(peek(r.as_raw_fd(), 65536), None, "only a prefix would fit");
    }

    #[test]
    fn drain_then_refill_gives_the_bytes_back_in_order() {
        let (mut r, w) = pipe();
        let bytes = fill(&w, 40_000);
        let flags = sys::status_flags(r.as_raw_fd()).unwrap();
        let drained = drain(r.as_raw_fd()).unwrap();
        assert_eq!(drained, bytes);
        assert_eq!(sys::bytes_waiting(r.as_raw_fd()).unwrap(), 0);
        assert_eq!(
            sys::status_flags(r.as_raw_fd()).unwrap(),
            flags,
            "the program's description was not made non-blocking"
        );
        refill(r.as_raw_fd(), &drained).unwrap();
        sys::write_all(w.as_raw_fd(), b"after").unwrap();
        drop(w);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(&all[..bytes.len()], &bytes[..]);
        assert_eq!(&all[bytes.len()..], b"after");
    }
}
