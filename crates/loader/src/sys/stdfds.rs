//! Which of the standard fds 0–2 crac was started without, and closing them again for the
//! program.
//!
//! Rust's std runtime (in `lang_start`, after every `.init_array` constructor) opens
//! `/dev/null` on each of fds 0–2 that is closed, so its own stdio never writes into some
//! unrelated file. A program started with `2>&-` must see fd 2 closed, as it would natively:
//! the start-up constructor (`signals.rs`) calls [`capture`] before std runs, and
//! [`close_for_program`] closes what std opened right before the jump (and before the no-ASLR
//! re-exec, so the re-executed image sees the same closed fds at its own start).
//!
//! [`capture`] runs before `main` with no runtime: it must not allocate or panic.

use std::io;
use std::sync::atomic::{AtomicU8, Ordering};

/// Bit `n` set: fd `n` (0, 1 or 2) was closed when the process started.
static CLOSED: AtomicU8 = AtomicU8::new(0);

/// Records which of fds 0–2 are closed. Called from the start-up constructor only.
pub(crate) fn capture() {
    let mut closed = 0u8;
    for fd in 0..3 {
        // SAFETY: F_GETFD only queries the fd's flags; it fails only when the fd is not open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
            closed |= 1 << fd;
        }
    }
    CLOSED.store(closed, Ordering::Relaxed);
}

/// The standard fds that were closed at start-up.
pub(crate) fn closed_at_start() -> impl Iterator<Item = i32> {
    let closed = CLOSED.load(Ordering::Relaxed);
    (0..3).filter(move |fd| closed & (1 << fd) != 0)
}

/// Whether `fd` is open on `/dev/null` (what std put on a closed standard fd).
fn is_dev_null(fd: i32) -> bool {
    let mut st = std::mem::MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fstat writes one stat into a valid out-pointer.
    if unsafe { libc::fstat(fd, st.as_mut_ptr()) } != 0 {
        return false;
    }
    // SAFETY: fstat returned 0, so it filled `st`.
    let st = unsafe { st.assume_init() };
    st.st_mode & libc::S_IFMT == libc::S_IFCHR && st.st_rdev == libc::makedev(1, 3)
}

/// Closes each standard fd that was closed at start-up and now holds std's `/dev/null`.
///
/// crac's own fds live in the high range (`fds::move_high`), so `/dev/null` is the only thing
/// that can sit on these numbers; anything else found there was put there on purpose and is
/// left alone (closing it could pull a file from under its owner). Allocation-free.
pub(crate) fn close_for_program() -> io::Result<()> {
    for fd in closed_at_start() {
        if is_dev_null(fd) {
            // SAFETY: closes a /dev/null fd std opened at start-up; nothing of crac's uses it
            // (crac's fds are duplicated to the high range, never used by these numbers).
            if unsafe { libc::close(fd) } != 0 {
                let e = io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::EINTR) {
                    return Err(e);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_null_is_recognised_and_other_files_are_not() {
        let null = std::fs::File::open("/dev/null").expect("open /dev/null");
        let zero = std::fs::File::open("/dev/zero").expect("open /dev/zero");
        let file = std::fs::File::open("/proc/self/cmdline").expect("open a file");
        use std::os::fd::AsRawFd;
        assert!(is_dev_null(null.as_raw_fd()));
        assert!(!is_dev_null(zero.as_raw_fd()));
        assert!(!is_dev_null(file.as_raw_fd()));
        assert!(!is_dev_null(-1));
    }
}
