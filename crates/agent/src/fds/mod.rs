//! The program's fds and process-wide state (cwd, umask, rlimits): captured at checkpoint,
//! restored at restart.
//!
//! CONTRACT (skeleton; being written): [`capture`] runs while the program's threads are
//! stopped; it may change the fd table only transiently (draining pipes) and [`FdCapture::resume`]
//! puts back what it took when the program continues. [`restore`] runs in `crac_restart` after
//! memory is mapped and before threads resume; it places every fd at its number.

use crac_core::image::{FdRecord, Rlimit};

/// Why fds could not be captured or restored.
#[derive(Debug, thiserror::Error)]
pub enum FdError {
    /// Placeholder while this module is being written.
    #[error("fd capture is not implemented yet")]
    NotImplemented,
}

/// The program's fds as captured, plus what must be put back if the program continues.
#[derive(Debug, Default)]
pub struct FdCapture {
    /// The records for the image.
    pub records: Vec<FdRecord>,
}

impl FdCapture {
    /// Puts back what capture took (bytes drained from pipes) so the program goes on as if
    /// nothing happened. Called after a checkpoint-and-continue, written or failed.
    pub fn resume(self) -> Result<(), FdError> {
        Ok(())
    }
}

/// Captures the program's fds. `is_crac_fd` says which fds are crac's own (skipped);
/// `agent_reply` is the fd waiting in `crac_checkpoint()` and the reply it reads after restart.
pub fn capture(
    is_crac_fd: &dyn Fn(i32) -> bool,
    agent_reply: Option<(i32, &[u8])>,
) -> Result<FdCapture, FdError> {
    let _ = (is_crac_fd, agent_reply);
    Err(FdError::NotImplemented)
}

/// Restores `records` at their numbers. crac's own fds must already be out of the way (see
/// `crac_loader::fds`). fds 0–2 recorded as [`crac_core::image::FdKind::Stdio`] are left as
/// `crac_restart`'s own.
pub fn restore(records: &[FdRecord]) -> Result<(), FdError> {
    let _ = records;
    Err(FdError::NotImplemented)
}

/// Process-wide state kept with the fds.
#[derive(Clone, Debug, Default)]
pub struct ProcessState {
    /// Working directory.
    pub cwd: String,
    /// umask.
    pub umask: u32,
    /// Resource limits.
    pub rlimits: Vec<Rlimit>,
}

/// Captures cwd, umask and rlimits.
pub fn capture_process() -> Result<ProcessState, FdError> {
    Err(FdError::NotImplemented)
}

/// Restores cwd, umask and rlimits.
pub fn restore_process(state: &ProcessState) -> Result<(), FdError> {
    let _ = state;
    Err(FdError::NotImplemented)
}
