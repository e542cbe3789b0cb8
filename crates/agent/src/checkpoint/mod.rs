//! Writing a checkpoint of the running program (DESIGN.md, "Checkpoint and restart of the CPU
//! side"): quiesce every program thread, capture threads, signals, fds and memory, stream the
//! image to `NAME.tmp`, fsync, rename, fsync the directory, then let the program go on (or exit).
//!
//! CONTRACT (skeleton; being written): one checkpoint at a time per process; a failure at any
//! step leaves the program running and any previous image untouched.

use std::path::PathBuf;
use std::time::Duration;

use crac_core::image::CheckpointPolicy;

use crate::lower::LowerHalf;

/// Exit status of a program stopped by a checkpoint-and-exit (`crac_ckpt --exit`,
/// `--exit-after-ckpt`), so batch scripts can tell it from the program finishing.
pub const EXIT_AFTER_CHECKPOINT: i32 = 85;

/// What to checkpoint and where.
#[derive(Clone, Debug, Default)]
pub struct CheckpointRequest {
    /// The final image path (absolute); the image is written to `PATH.tmp` first.
    pub path: PathBuf,
    /// Exit the process with [`EXIT_AFTER_CHECKPOINT`] once the image is durable.
    pub exit_after: bool,
    /// The launch's checkpoint settings, saved in the image so a restart keeps them.
    pub policy: CheckpointPolicy,
    /// A program fd whose peer waits in `crac_checkpoint()` for this checkpoint, and the reply
    /// frame it must read if the program is restarted from this image.
    pub agent_reply: Option<(i32, Vec<u8>)>,
}

/// How far the write has got.
#[derive(Clone, Copy, Debug, Default)]
pub struct Progress {
    /// Bytes written so far.
    pub done: u64,
    /// Bytes to write in all.
    pub total: u64,
}

/// A good checkpoint.
#[derive(Clone, Debug, Default)]
pub struct CheckpointOutcome {
    /// Where the image is.
    pub path: PathBuf,
    /// Image size in bytes.
    pub image_bytes: u64,
    /// Program memory saved, bytes (zero pages skipped).
    pub memory_bytes: u64,
    /// How long the program's threads were stopped.
    pub pause: Duration,
    /// How long writing the image took.
    pub write: Duration,
}

/// Why a checkpoint failed (the program goes on running).
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Placeholder while the engine is being written.
    #[error("checkpointing is not implemented yet")]
    NotImplemented,
}

/// Checkpoints this process. Runs on the agent thread.
pub fn checkpoint(
    request: &CheckpointRequest,
    lower: &dyn LowerHalf,
    progress: &mut dyn FnMut(Progress),
) -> Result<CheckpointOutcome, CheckpointError> {
    let _ = (request, lower, progress);
    Err(CheckpointError::NotImplemented)
}
