//! Restarting a program from an image (DESIGN.md, "The process layout" point 5): check the
//! build-id and fingerprints, reserve every saved interval, map the regions back, restore fds,
//! signal state and process state, start the agent, recreate the threads and resume them.
//!
//! CONTRACT (skeleton; being written): the caller (`crac_restart`) has run
//! `startup::ensure_no_aslr` and `startup::init_lower_half` and set up logging, and nothing
//! else. On success this never returns: the process is the program.

use std::convert::Infallible;
use std::path::Path;

/// How to restart.
#[derive(Clone, Copy, Debug, Default)]
pub struct RestartOptions {
    /// Read every payload into memory (checking every checksum) instead of mapping the image.
    pub eager: bool,
}

/// Why a restart failed.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// Placeholder while the restorer is being written.
    #[error("restart is not implemented yet")]
    NotImplemented,
}

/// Restarts the program saved in `image`. Returns only on failure.
pub fn restart(image: &Path, options: &RestartOptions) -> Result<Infallible, RestoreError> {
    let _ = (image, options);
    Err(RestoreError::NotImplemented)
}
