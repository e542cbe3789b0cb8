//! The seam between the agent and the loader's record of the lower half: which memory and which
//! threads are crac's, and how crac's fds are kept out of the program's way. The real
//! implementation asks `crac_loader`; tests use a stand-in that needs no launch.

use std::io;
use std::os::fd::OwnedFd;

use crac_core::interval::IntervalSet;

/// What the agent needs to know about, and do to, the lower half.
pub trait LowerHalf: Send + Sync + 'static {
    /// Records the calling thread as a lower-half thread; called first on the agent thread.
    fn register_current_thread(&self);
    /// The lower half's memory right now.
    fn intervals(&self) -> IntervalSet;
    /// The lower half's threads.
    fn tids(&self) -> Vec<i32>;
    /// Moves one of crac's fds to the protected high range, close-on-exec.
    fn protect_fd(&self, fd: OwnedFd) -> io::Result<OwnedFd>;
}

/// The lower half as the loader recorded it in this process.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoaderLowerHalf;

impl LowerHalf for LoaderLowerHalf {
    fn register_current_thread(&self) {
        crac_loader::lower::register_current_thread();
    }

    fn intervals(&self) -> IntervalSet {
        crac_loader::lower::intervals()
    }

    fn tids(&self) -> Vec<i32> {
        crac_loader::lower::lower_tids()
    }

    fn protect_fd(&self, fd: OwnedFd) -> io::Result<OwnedFd> {
        crac_loader::fds::move_high(fd)
    }
}
