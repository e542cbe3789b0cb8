//! crac's fds in a process whose fd table belongs to the program.
//!
//! The program may close any fd (`close_range(3, ~0)` is common in daemons and sandboxes) and
//! reuse the number for a file of its own. An `OwnedFd` would then close the program's file when
//! dropped, or abort the whole process (Rust's "IO Safety violation") when the number is already
//! closed. A [`Guarded`] fd remembers which file it was opened on (device and inode) and, when it
//! is dropped, closes the number only if it still refers to that file; otherwise it forgets the
//! number without touching it. Code that uses the fd asks [`Guarded::is_ours`] first when the
//! answer matters (before `accept`, before writing a log line).
//!
//! Between the check and the use the program could still swap the file (another thread); that
//! window is a few instructions, and closing or writing crac's fds from the program is already
//! outside what crac can prevent.

use std::io;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::os::fd::{AsRawFd, IntoRawFd, RawFd};

use crate::sys::{self, FileId};

/// One of crac's fds that is closed on drop only while it still refers to the file it was
/// opened on.
#[derive(Debug)]
pub struct Guarded<T: AsRawFd + IntoRawFd> {
    inner: ManuallyDrop<T>,
    id: FileId,
}

impl<T: AsRawFd + IntoRawFd> Guarded<T> {
    /// Guards `fd`, recording the file it refers to now.
    pub fn new(fd: T) -> io::Result<Self> {
        let id = sys::file_id(fd.as_raw_fd())?;
        Ok(Self {
            inner: ManuallyDrop::new(fd),
            id,
        })
    }

    /// The fd number (which may no longer be ours; see [`Guarded::is_ours`]).
    pub fn raw(&self) -> RawFd {
        self.inner.as_raw_fd()
    }

    /// Whether the number is still open on the file it was guarded with.
    pub fn is_ours(&self) -> bool {
        sys::file_id(self.raw()).is_ok_and(|id| id == self.id)
    }

    /// Gives the number up without closing it (the program closed or reused it).
    pub fn forget(mut self) {
        // SAFETY: `inner` is taken exactly once here, and `self` is forgotten right after, so
        // Drop never sees the taken value.
        let fd = unsafe { ManuallyDrop::take(&mut self.inner) };
        let _ = fd.into_raw_fd();
        std::mem::forget(self);
    }
}

impl<T: AsRawFd + IntoRawFd> Deref for Guarded<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.inner
    }
}

impl<T: AsRawFd + IntoRawFd> Drop for Guarded<T> {
    fn drop(&mut self) {
        // SAFETY: `inner` is taken exactly once, here in drop; nothing uses it afterwards.
        let fd = unsafe { ManuallyDrop::take(&mut self.inner) }.into_raw_fd();
        if sys::file_id(fd).is_ok_and(|id| id == self.id) {
            // SAFETY: the number still refers to the file we guarded, so it is ours, and the
            // value that held it is gone.
            unsafe { sys::close(fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::os::fd::AsFd;

    fn is_open(fd: RawFd) -> bool {
        sys::file_id(fd).is_ok()
    }

    #[test]
    fn drop_closes_a_number_that_is_still_ours() {
        let g = Guarded::new(File::open("/dev/null").unwrap()).unwrap();
        let n = g.raw();
        assert!(g.is_ours());
        drop(g);
        assert!(!is_open(n));
    }

    #[test]
    fn a_reused_number_is_left_to_its_new_owner() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        let g = Guarded::new(a).unwrap();
        let n = g.raw();
        // The "program" puts a file of its own at our number (dup2 replaces atomically).
        let theirs = File::open("/proc/self/cmdline").unwrap();
        let theirs_id = sys::file_id(theirs.as_fd().as_raw_fd()).unwrap();
        // SAFETY: test: replaces our own guarded fd with a copy of `theirs`.
        assert_eq!(unsafe { libc::dup2(theirs.as_raw_fd(), n) }, n);
        assert!(!g.is_ours());
        drop(g);
        assert_eq!(sys::file_id(n).unwrap(), theirs_id, "program's file closed");
        // SAFETY: test: the number now holds our dup of `theirs`.
        unsafe { sys::close(n) };
    }

    #[test]
    fn forget_leaves_the_number_open() {
        let g = Guarded::new(File::open("/dev/null").unwrap()).unwrap();
        let n = g.raw();
        g.forget();
        assert!(is_open(n));
        // SAFETY: test: the forgotten number is still our /dev/null.
        unsafe { sys::close(n) };
    }
}
