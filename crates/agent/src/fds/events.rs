//! eventfd, epoll, timerfd and signalfd: read back from `/proc/self/fdinfo`, recreated at
//! restart. Other anonymous-inode fds (inotify, io_uring, pidfd, perf, userfaultfd, bpf) are
//! refused by name.
//!
//! A timerfd's pending expirations (`ticks`) cannot be set from user space without
//! `CONFIG_CHECKPOINT_RESTORE`'s ioctl; a timer with expirations not yet read is re-armed to
//! expire at once, so it is readable after restart as before (the count read may be 1 where it
//! was more, and a periodic timer's phase moves by less than one interval).

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use crac_core::image::{EpollWatch, FdKind};

use super::FdError;
use super::capture::Probe;
use super::sys;

/// The value of the `key:` line of an fdinfo text, trimmed.
fn field<'a>(fdinfo: &'a str, key: &str) -> Option<&'a str> {
    fdinfo.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        Some(rest.trim())
    })
}

/// `eventfd-count` (hex in the kernel's format).
fn parse_eventfd_count(fdinfo: &str) -> Option<u64> {
    u64::from_str_radix(field(fdinfo, "eventfd-count")?, 16).ok()
}

/// `eventfd-semaphore` (absent before Linux 6.5: then not a semaphore as far as we can tell).
fn parse_eventfd_semaphore(fdinfo: &str) -> bool {
    field(fdinfo, "eventfd-semaphore").is_some_and(|v| v == "1")
}

/// One epoll watch line: `tfd: N events: HEX data: HEX pos:P ino:HEX sdev:HEX`, with the
/// watched file's inode.
fn parse_epoll_line(line: &str) -> Option<(EpollWatch, u64)> {
    let rest = line.strip_prefix("tfd:")?;
    let mut words = rest.split_whitespace();
    let fd = words.next()?.parse::<i32>().ok();
    let (mut events, mut data, mut ino) = (None, None, None);
    while let Some(w) = words.next() {
        match w {
            "events:" => events = u32::from_str_radix(words.next()?, 16).ok(),
            "data:" => data = u64::from_str_radix(words.next()?, 16).ok(),
            _ => {
                if let Some(v) = w.strip_prefix("ino:") {
                    ino = u64::from_str_radix(v, 16).ok();
                }
            }
        }
    }
    Some((
        EpollWatch {
            fd: fd?,
            events: events?,
            data: data?,
        },
        ino?,
    ))
}

/// Every watch of an epoll fdinfo, or `None` if a watch line does not parse.
fn parse_epoll(fdinfo: &str) -> Option<Vec<(EpollWatch, u64)>> {
    fdinfo
        .lines()
        .filter(|l| l.starts_with("tfd:"))
        .map(parse_epoll_line)
        .collect()
}

/// A decimal field.
fn parse_dec<T: std::str::FromStr>(fdinfo: &str, key: &str) -> Option<T> {
    field(fdinfo, key)?.parse().ok()
}

/// A signalfd's `sigmask` (hex).
fn parse_sigmask(fdinfo: &str) -> Option<u64> {
    u64::from_str_radix(field(fdinfo, "sigmask")?, 16).ok()
}

/// The fdinfo text of fd `fd`.
fn fdinfo(fd: i32) -> Result<String, FdError> {
    std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).map_err(|source| FdError::Inspect {
        fd,
        what: "fdinfo",
        source,
    })
}

/// An anonymous-inode fd (`readlink` says `anon_inode:…`).
pub(super) fn capture(p: &Probe, probes: &[Probe]) -> Result<FdKind, FdError> {
    let name = p
        .link
        .as_bytes()
        .strip_prefix(b"anon_inode:")
        .unwrap_or(b"");
    let missing = |field| FdError::Fdinfo { fd: p.fd, field };
    let nonblock = p.flags & libc::O_NONBLOCK;
    match name {
        b"[eventfd]" => {
            let info = fdinfo(p.fd)?;
            let count = parse_eventfd_count(&info).ok_or_else(|| missing("eventfd-count"))?;
            let semaphore = if parse_eventfd_semaphore(&info) {
                libc::EFD_SEMAPHORE
            } else {
                0
            };
            Ok(FdKind::EventFd {
                count,
                flags: semaphore | nonblock,
            })
        }
        b"[eventpoll]" => {
            let info = fdinfo(p.fd)?;
            let mut watches = parse_epoll(&info).ok_or_else(|| missing("watch list"))?;
            // The kernel lists them in its tree's order (by file address): sort by number.
            watches.sort_unstable_by_key(|(w, _)| w.fd);
            for (w, ino) in &watches {
                // Probes are sorted by fd.
                let same = probes
                    .binary_search_by_key(&w.fd, |q| q.fd)
                    .is_ok_and(|k| probes[k].st.ino == *ino);
                if !same {
                    return Err(FdError::StaleWatch {
                        epoll: p.fd,
                        watched: w.fd,
                    });
                }
            }
            Ok(FdKind::Epoll {
                watches: watches.into_iter().map(|(w, _)| w).collect(),
            })
        }
        b"[timerfd]" => {
            let info = fdinfo(p.fd)?;
            let clock = parse_dec(&info, "clockid").ok_or_else(|| missing("clockid"))?;
            let ticks: u64 = parse_dec(&info, "ticks").ok_or_else(|| missing("ticks"))?;
            let (value, interval_ns) =
                sys::timerfd_get(p.fd).map_err(|source| FdError::Inspect {
                    fd: p.fd,
                    what: "timerfd_gettime",
                    source,
                })?;
            // Expirations not yet read: make it expire again at once (module doc).
            let value_ns = if ticks > 0 { 1 } else { value };
            Ok(FdKind::TimerFd {
                clock,
                flags: nonblock,
                value_ns,
                interval_ns,
            })
        }
        b"[signalfd]" => {
            let info = fdinfo(p.fd)?;
            let mask = parse_sigmask(&info).ok_or_else(|| missing("sigmask"))?;
            Ok(FdKind::SignalFd {
                mask,
                flags: nonblock,
            })
        }
        other => {
            let (what, short) = unsupported_anon(other);
            Err(FdError::Unsupported {
                fd: p.fd,
                what,
                short,
            })
        }
    }
}

/// How to name an anonymous inode crac does not save.
fn unsupported_anon(name: &[u8]) -> (String, &'static str) {
    let text = String::from_utf8_lossy(name);
    match name {
        b"inotify" => ("an inotify instance".into(), "inotify"),
        b"[fanotify]" => ("a fanotify instance".into(), "fanotify"),
        b"[io_uring]" => ("an io_uring instance".into(), "io_uring"),
        b"[pidfd]" => ("a pidfd".into(), "pidfds"),
        b"[perf_event]" => ("a perf event".into(), "perf events"),
        b"[userfaultfd]" => ("a userfaultfd".into(), "userfaultfd"),
        n if n.starts_with(b"bpf") => (format!("a BPF object ({text})"), "BPF objects"),
        _ => (format!("an anonymous inode ({text})"), "it"),
    }
}

/// Recreates an eventfd with its counter.
pub(super) fn restore_eventfd(fd: i32, count: u64, flags: i32) -> Result<OwnedFd, FdError> {
    let err = |source| FdError::Recreate {
        fd,
        what: "eventfd",
        source,
    };
    let efd = sys::eventfd(flags & (libc::EFD_SEMAPHORE | libc::EFD_NONBLOCK)).map_err(err)?;
    if count > 0 {
        // The counter starts at 0, so adding any value up to u64::MAX - 1 never blocks.
        sys::write_all(efd.as_raw_fd(), &count.to_ne_bytes()).map_err(err)?;
    }
    Ok(efd)
}

/// Creates an empty epoll instance (watches are added by [`add_watches`] once every fd is at its
/// number).
pub(super) fn restore_epoll(fd: i32) -> Result<OwnedFd, FdError> {
    sys::epoll_create().map_err(|source| FdError::Recreate {
        fd,
        what: "epoll",
        source,
    })
}

/// Adds the watches of the epoll instance now at number `epoll`.
pub(super) fn add_watches(epoll: i32, watches: &[EpollWatch]) -> Result<(), FdError> {
    for w in watches {
        sys::epoll_add(epoll, w.fd, w.events, w.data).map_err(|source| FdError::Watch {
            epoll,
            watched: w.fd,
            source,
        })?;
    }
    Ok(())
}

/// Recreates a timerfd, armed relative to now.
pub(super) fn restore_timerfd(
    fd: i32,
    clock: i32,
    flags: i32,
    value_ns: u64,
    interval_ns: u64,
) -> Result<OwnedFd, FdError> {
    let err = |source| FdError::Recreate {
        fd,
        what: "timerfd",
        source,
    };
    let tfd = sys::timerfd_create(clock, flags & libc::TFD_NONBLOCK).map_err(err)?;
    if value_ns > 0 {
        sys::timerfd_set(tfd.as_raw_fd(), value_ns, interval_ns).map_err(err)?;
    }
    Ok(tfd)
}

/// Recreates a signalfd.
pub(super) fn restore_signalfd(fd: i32, mask: u64, flags: i32) -> Result<OwnedFd, FdError> {
    sys::signalfd(mask, flags & libc::SFD_NONBLOCK).map_err(|source| FdError::Recreate {
        fd,
        what: "signalfd",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTFD: &str = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\n\
                           eventfd-count:               1a\neventfd-id: 1\n\
                           eventfd-semaphore: 1\n";

    #[test]
    fn eventfd_count_is_hex_and_semaphore_is_read() {
        assert_eq!(parse_eventfd_count(EVENTFD), Some(26));
        assert!(parse_eventfd_semaphore(EVENTFD));
        let old_kernel = "eventfd-count:                0\neventfd-id: 3\n";
        assert_eq!(parse_eventfd_count(old_kernel), Some(0));
        assert!(!parse_eventfd_semaphore(old_kernel));
        assert_eq!(parse_eventfd_count("pos: 0\n"), None);
    }

    #[test]
    fn epoll_watches() {
        let info = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\n\
                    tfd:        5 events: 80000019 data:                5  pos:0 ino:7fc56 sdev:f\n\
                    tfd:       12 events:       1 data: ffffffffffffffff  pos:0 ino:1 sdev:0\n";
        let w = parse_epoll(info).unwrap();
        assert_eq!(
            w,
            vec![
                (
                    EpollWatch {
                        fd: 5,
                        events: 0x8000_0019,
                        data: 5
                    },
                    0x7fc56
                ),
                (
                    EpollWatch {
                        fd: 12,
                        events: 1,
                        data: u64::MAX
                    },
                    1
                ),
            ]
        );
        assert_eq!(parse_epoll("pos: 0\n").unwrap(), vec![]);
        assert!(parse_epoll("tfd: 5 events: zz data: 1 ino:1\n").is_none());
        assert!(parse_epoll("tfd: 5 events: 1\n").is_none());
    }

    #[test]
    fn timerfd_and_signalfd_fields() {
        let t = "pos:\t0\nflags:\t02004000\nmnt_id:\t17\nino:\t1038\nclockid: 1\nticks: 3\n\
                 settime flags: 01\nit_value: (0, 499)\nit_interval: (1, 0)\n";
        assert_eq!(parse_dec::<i32>(t, "clockid"), Some(1));
        assert_eq!(parse_dec::<u64>(t, "ticks"), Some(3));
        let s = "pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\nsigmask:\t0000000000000202\n";
        assert_eq!(parse_sigmask(s), Some(0x202));
        assert_eq!(parse_sigmask("sigmask: xyz\n"), None);
    }

    #[test]
    fn field_needs_the_whole_key() {
        assert_eq!(
            field("eventfd-count-x: 1\neventfd-count: 2\n", "eventfd-count"),
            Some("2")
        );
    }

    #[test]
    fn unsupported_names() {
        assert_eq!(unsupported_anon(b"inotify").1, "inotify");
        assert!(unsupported_anon(b"[weird]").0.contains("[weird]"));
    }
}
