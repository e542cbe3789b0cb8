//! The system calls behind eventfd, epoll, timerfd and signalfd capture and restore.

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{OwnedFd, RawFd};

use super::{check, owned};

/// `eventfd(0, flags | EFD_CLOEXEC)`.
pub fn eventfd(flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: eventfd creates a new fd; no memory is passed.
    owned(unsafe { libc::eventfd(0, flags | libc::EFD_CLOEXEC) })
}

/// `epoll_create1(EPOLL_CLOEXEC)`.
pub fn epoll_create() -> io::Result<OwnedFd> {
    // SAFETY: epoll_create1 creates a new fd; no memory is passed.
    owned(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })
}

/// `epoll_ctl(ADD)` of fd number `fd` with `events` and `data`.
pub fn epoll_add(epoll: RawFd, fd: RawFd, events: u32, data: u64) -> io::Result<()> {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: `ev` is a valid epoll_event for the call; the kernel copies it.
    check(unsafe { libc::epoll_ctl(epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) }).map(drop)
}

/// Nanoseconds in a timespec (negative fields count as 0).
fn timespec_ns(ts: libc::timespec) -> u64 {
    let s = u64::try_from(ts.tv_sec).unwrap_or(0);
    let ns = u64::try_from(ts.tv_nsec).unwrap_or(0);
    s.saturating_mul(1_000_000_000).saturating_add(ns)
}

/// A timespec for `ns` nanoseconds.
fn ns_timespec(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: libc::time_t::try_from(ns / 1_000_000_000).unwrap_or(libc::time_t::MAX),
        // Below 10^9, so it fits every c_long.
        tv_nsec: libc::c_long::try_from(ns % 1_000_000_000).unwrap_or(0),
    }
}

/// `timerfd_gettime`: `(time to the next expiry, interval)` in nanoseconds (0 = disarmed).
pub fn timerfd_get(fd: RawFd) -> io::Result<(u64, u64)> {
    let mut cur = MaybeUninit::<libc::itimerspec>::uninit();
    // SAFETY: `cur` has room for one itimerspec, filled on success (checked before reading).
    check(unsafe { libc::timerfd_gettime(fd, cur.as_mut_ptr()) })?;
    // SAFETY: timerfd_gettime returned 0, so it filled `cur`.
    let cur = unsafe { cur.assume_init() };
    Ok((timespec_ns(cur.it_value), timespec_ns(cur.it_interval)))
}

/// `timerfd_create(clock, flags | TFD_CLOEXEC)`.
pub fn timerfd_create(clock: i32, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: timerfd_create creates a new fd; no memory is passed.
    owned(unsafe { libc::timerfd_create(clock, flags | libc::TFD_CLOEXEC) })
}

/// Arms timerfd `fd` relative to now (`value_ns` 0 leaves it disarmed).
pub fn timerfd_set(fd: RawFd, value_ns: u64, interval_ns: u64) -> io::Result<()> {
    let new = libc::itimerspec {
        it_value: ns_timespec(value_ns),
        it_interval: ns_timespec(interval_ns),
    };
    // SAFETY: `new` is valid for the call; the old value is not asked for (null).
    check(unsafe { libc::timerfd_settime(fd, 0, &new, std::ptr::null_mut()) }).map(drop)
}

/// `signalfd4(-1, mask, flags | SFD_CLOEXEC)` with the kernel's 64-bit signal set (bit `n - 1`
/// for signal `n`).
pub fn signalfd(mask: u64, flags: i32) -> io::Result<OwnedFd> {
    // SAFETY: `mask` is valid for reads of the 8 bytes passed as the set's size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_signalfd4,
            -1 as libc::c_int,
            &raw const mask,
            size_of::<u64>(),
            flags | libc::SFD_CLOEXEC,
        )
    };
    let fd = libc::c_int::try_from(rc).map_err(|_| io::Error::last_os_error())?;
    owned(fd)
}
