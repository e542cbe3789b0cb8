//! crac's own fds live in a protected high range, just below the soft `RLIMIT_NOFILE`, so
//! the program's fds (which start at the bottom) never collide with them and checkpoints can
//! skip them by number.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// How many fd numbers the protected range holds.
pub const HIGH_RANGE: i32 = 64;
/// The range never starts above this, so a huge soft limit does not make the kernel grow the
/// fd table to millions of entries.
const MAX_TOP: u64 = 1 << 16;

/// `[low, top)` of the protected range for the current soft limit.
pub fn high_range() -> io::Result<(i32, i32)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into a valid local.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let top = i32::try_from(lim.rlim_cur.min(MAX_TOP)).unwrap_or(1 << 16);
    Ok(((top - HIGH_RANGE).max(3), top))
}

/// Moves a crac-owned fd into the protected high range (just below RLIMIT_NOFILE's soft
/// limit), close-on-exec, closing the old number.
pub fn move_high(fd: OwnedFd) -> io::Result<OwnedFd> {
    let (low, _top) = high_range()?;
    // SAFETY: F_DUPFD_CLOEXEC duplicates a valid open fd to the lowest free number >= low.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, low) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    drop(fd);
    // SAFETY: `new` was just returned by fcntl and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_fd_is_high_cloexec_and_the_same_file() {
        use std::io::Read;
        let f = std::fs::File::open("/proc/self/cmdline").expect("open");
        let moved = move_high(OwnedFd::from(f)).expect("move");
        let (low, top) = high_range().expect("range");
        let n = moved.as_raw_fd();
        assert!(n >= low && n < top, "{n} not in {low}..{top}");
        // SAFETY: querying the flags of an fd we own.
        let flags = unsafe { libc::fcntl(n, libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        let mut text = Vec::new();
        std::fs::File::from(moved)
            .read_to_end(&mut text)
            .expect("read");
        assert_eq!(
            text,
            std::fs::read("/proc/self/cmdline").expect("read"),
            "same file"
        );
    }
}
