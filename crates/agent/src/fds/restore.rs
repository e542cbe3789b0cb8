//! Restore: make every description once at a free temporary number above the program's
//! highest, then `dup3` each fd into place, then add epoll watches.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::fd::{AsRawFd, OwnedFd};

use crac_core::image::{FdKind, FdRecord};

use super::capture::note_startup_stdio;
use super::{FdError, events, files, pipes, socketpairs, sockets, sys};

/// Restores `records` at their numbers. crac's own fds must already be out of the way (see
/// `crac_loader::fds`); whatever else sits at a recorded number is replaced. fds 0–2 recorded as
/// [`FdKind::Stdio`] are left as `crac_restart`'s own, and fds 0–2 with no record (closed in the
/// program) are closed.
pub fn restore(records: &[FdRecord]) -> Result<(), FdError> {
    note_startup_stdio();
    check(records)?;
    let base = records.iter().map(|r| r.fd).max().unwrap_or(2).max(2) + 1;
    let to_temp = |fd: i32, obj: OwnedFd| {
        // The new fd took the lowest free number, which may be one the program needs: move it.
        sys::dup_at_least(obj.as_raw_fd(), base).map_err(|source| FdError::Place { fd, source })
    };

    let mut made: BTreeMap<u32, OwnedFd> = BTreeMap::new();
    let first_fd: HashMap<u32, i32> = records
        .iter()
        .rev()
        .map(|r| (r.description, r.fd))
        .collect();
    let pipes_and_pairs = pipes::restore(records)?
        .into_iter()
        .chain(socketpairs::restore(records)?);
    for (description, obj) in pipes_and_pairs {
        let fd = first_fd.get(&description).copied().unwrap_or(-1);
        made.insert(description, to_temp(fd, obj)?);
    }
    // IPv6 listeners last, so an IPv4 one on the same port binds first (see `sockets`).
    let mut order: Vec<&FdRecord> = records.iter().collect();
    order.sort_by_key(|r| {
        matches!(
            r.kind,
            FdKind::ListenSocket {
                domain: libc::AF_INET6,
                ..
            }
        )
    });
    for r in order {
        if made.contains_key(&r.description)
            || matches!(r.kind, FdKind::Stdio | FdKind::Pipe { .. })
        {
            continue;
        }
        let obj = make(r)?;
        made.insert(r.description, to_temp(r.fd, obj)?);
    }

    // Stdio records above 2 duplicate the standard fd of their description, left in place.
    let std_source = |r: &FdRecord| {
        records
            .iter()
            .find(|s| s.description == r.description && (0..3).contains(&s.fd))
            .map(|s| s.fd)
    };
    for std in 0..3 {
        if !records.iter().any(|r| r.fd == std) {
            sys::close_number(std);
        }
    }
    for r in records {
        let placed = match (&r.kind, made.get(&r.description)) {
            // The restarter's own standard fd; if it has none there, neither has the program.
            (FdKind::Stdio, _) if (0..3).contains(&r.fd) => {
                sys::set_cloexec(r.fd, r.cloexec).or_else(closed_is_fine)
            }
            (FdKind::Stdio, _) => match std_source(r) {
                Some(src) => sys::dup_at_least(src, base)
                    .and_then(|tmp| sys::place(&tmp, r.fd, r.cloexec))
                    .or_else(closed_is_fine),
                None => {
                    return Err(FdError::BadRecord {
                        fd: r.fd,
                        why: "a standard fd above 2 with no fd 0-2 sharing it".into(),
                    });
                }
            },
            (_, Some(obj)) => sys::place(obj, r.fd, r.cloexec),
            (_, None) => {
                return Err(FdError::BadRecord {
                    fd: r.fd,
                    why: "nothing was made for its description".into(),
                });
            }
        };
        placed.map_err(|source| FdError::Place { fd: r.fd, source })?;
    }
    // Watches belong to the description: add them once, through its first fd.
    let mut watched: Vec<u32> = Vec::new();
    for r in records {
        if let FdKind::Epoll { watches } = &r.kind
            && !watched.contains(&r.description)
        {
            watched.push(r.description);
            events::add_watches(r.fd, watches)?;
        }
    }
    Ok(())
}

/// `EBADF` from a standard fd the restarter was started without is not an error.
fn closed_is_fine(e: std::io::Error) -> std::io::Result<()> {
    if e.raw_os_error() == Some(libc::EBADF) {
        Ok(())
    } else {
        Err(e)
    }
}

/// Makes the object of a record that is neither a pipe nor standard.
fn make(r: &FdRecord) -> Result<OwnedFd, FdError> {
    let fd = r.fd;
    let with_flags = |obj: OwnedFd, flags: i32| {
        sys::set_status_flags(obj.as_raw_fd(), flags)
            .map(|()| obj)
            .map_err(|source| FdError::Place { fd, source })
    };
    match &r.kind {
        FdKind::File {
            path,
            flags,
            offset,
            size,
        } => files::restore_file(fd, path, *flags, *offset, *size),
        FdKind::Device { path, flags } => files::restore_device(fd, path, *flags),
        FdKind::EventFd { count, flags } => events::restore_eventfd(fd, *count, *flags),
        FdKind::Epoll { .. } => events::restore_epoll(fd),
        FdKind::TimerFd {
            clock,
            flags,
            value_ns,
            interval_ns,
        } => events::restore_timerfd(fd, *clock, *flags, *value_ns, *interval_ns),
        FdKind::SignalFd { mask, flags } => events::restore_signalfd(fd, *mask, *flags),
        FdKind::ListenSocket {
            domain,
            ty,
            protocol,
            addr,
            flags,
        } => with_flags(
            sockets::restore_listen(fd, *domain, *ty, *protocol, addr)?,
            *flags,
        ),
        FdKind::DeadSocket { ty, flags, .. } => with_flags(sockets::restore_dead(fd, *ty)?, *flags),
        FdKind::AgentReply { reply } => sockets::restore_reply(fd, reply),
        FdKind::Stdio | FdKind::Pipe { .. } | FdKind::SocketPair { .. } => {
            Err(FdError::BadRecord {
                fd,
                why: "made elsewhere".into(),
            })
        }
    }
}

/// Refuses records that cannot be restored as given: negative or repeated numbers, and
/// descriptions shared by records of different kinds.
fn check(records: &[FdRecord]) -> Result<(), FdError> {
    let mut numbers = HashSet::new();
    let mut kinds = HashMap::new();
    for r in records {
        let bad = |why: &str| {
            Err(FdError::BadRecord {
                fd: r.fd,
                why: why.to_owned(),
            })
        };
        if r.fd < 0 {
            return bad("negative fd number");
        }
        if !numbers.insert(r.fd) {
            return bad("recorded twice");
        }
        let kind = std::mem::discriminant(&r.kind);
        if *kinds.entry(r.description).or_insert(kind) != kind {
            return bad("shares a description with an fd of another kind");
        }
    }
    Ok(())
}
