//! Writing a checkpoint of the running program (DESIGN.md, "Checkpoint and restart of the CPU
//! side" and "CUDA"): hold and drain the program's CUDA calls, quiesce every program thread,
//! capture threads, signals, fds, device memory and memory, stream the image to `NAME.tmp`,
//! fsync, rename, fsync the directory, then let the program go on (or leave it stopped for the
//! caller to exit).
//!
//! One checkpoint at a time per process; a failure at any step leaves the program running and
//! any previous image untouched (the temporary file is removed).
//!
//! The steps, in order:
//! 0. Under `--gpu` ([`cuda`]): the call table's gate closes (CUDA calls in flight finish, new
//!    ones wait in the upper half), every stream is synchronized, the host-callback thread is
//!    paused, and the replay log and the list of device regions are taken.
//! 1. The image file is created (and counted as crac's fd) and, under `--gpu`, the device
//!    regions are streamed into it ([`cuda::write_buffers`]) while the program's threads still
//!    run: with the gate closed and the device drained nothing they do can change device
//!    memory, so the pause does not grow with it.
//! 2. [`quiesce::stop`]: every program thread parks in crac's handler for signal 33; the
//!    kernel's signal frame on its stack is its register record.
//! 3. Frames of threads knocked out of a sleep or wait are rewritten to issue the call again
//!    ([`frame`]), the cached-tid offset is measured ([`threads`]), threads, signals, process
//!    state and the program's fds are captured.
//! 4. Regions are planned from `/proc/self/maps` minus the lower half ([`regions`]) and
//!    streamed ([`memory`]) after the device payloads; the metadata and header are written
//!    last.
//! 5. fsync, rename, fsync the directory; the program's action for signal 33 is put back,
//!    the fd capture resumed, the threads released, and the gate reopened.
//!
//! With `exit_after` the threads stay parked after a good image (and the gate closed): the
//! caller exits the process once it has told whoever asked, so the program never runs past its
//! image.

pub mod cuda;
pub mod frame;
pub mod machine;
mod memory;
mod process;
pub mod procmem;
pub mod quiesce;
pub mod regions;
pub mod threads;
mod write;

use std::io;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crac_core::image::{CheckpointPolicy, ImageError, durable};

use crate::fds::{self, FdError};
use crate::lower::LowerHalf;
use procmem::ProcMem;

/// Exit status of a program stopped by a checkpoint-and-exit (`crac_ckpt --exit`,
/// `--exit-after-ckpt`), so batch scripts can tell it from the program finishing.
pub const EXIT_AFTER_CHECKPOINT: i32 = 85;

/// What to checkpoint and where.
#[derive(Clone, Debug, Default)]
pub struct CheckpointRequest {
    /// The final image path (absolute); the image is written to `PATH.tmp` first.
    pub path: PathBuf,
    /// Leave the program stopped after a good image: the caller exits the process with
    /// [`EXIT_AFTER_CHECKPOINT`] once it has replied.
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
    /// How long writing the image took (device memory included).
    pub write: Duration,
    /// Device memory saved, bytes (0 without `--gpu`).
    pub device_bytes: u64,
    /// How long holding the program's CUDA calls and draining the device took, before the
    /// threads were stopped.
    pub drain: Duration,
    /// How long writing device memory to the image took (part of `write`, not of `pause`: it
    /// is written before the threads are stopped).
    pub device_write: Duration,
}

/// Why a checkpoint failed (the program goes on running).
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// Another checkpoint of this process is running.
    #[error("a checkpoint of this process is already running; wait for it to finish")]
    Busy,
    /// The device side (holding CUDA calls, draining, copying device memory) failed.
    #[error(transparent)]
    Device(#[from] cuda::DeviceError),
    /// Reading or setting the quiesce signal's action failed.
    #[error("cannot install crac's handler for signal 33 (the quiesce signal): {0}")]
    SignalAction(#[source] io::Error),
    /// `/proc/self/task` could not be listed.
    #[error("cannot list the program's threads in /proc/self/task: {0}")]
    ListThreads(#[source] io::Error),
    /// A thread could not be signalled.
    #[error("cannot signal thread {tid} to stop it: {source}")]
    Signal {
        /// The thread.
        tid: i32,
        /// Why.
        source: io::Error,
    },
    /// A thread did not stop.
    #[error("thread {tid} of the program did not stop for the checkpoint: {why}")]
    ThreadDidNotStop {
        /// The thread.
        tid: i32,
        /// Why, as far as its status tells.
        why: String,
    },
    /// The program starts threads faster than they can be stopped.
    #[error("the program kept starting threads while they were being stopped; try again")]
    ThreadsKeepStarting,
    /// More threads than crac can stop at once.
    #[error("the program has more than {max} threads; crac cannot checkpoint that many")]
    TooManyThreads {
        /// The limit.
        max: usize,
    },
    /// A program thread was stopped while running crac's own code (its fs base is crac's).
    #[error(
        "thread {tid} of the program was inside crac's lower half when it stopped; try again \
         (callers into crac must be held off before a checkpoint)"
    )]
    ThreadInCrac {
        /// The thread.
        tid: i32,
    },
    /// A `/proc/self` file could not be read.
    #[error("cannot read {what} of the process: {source}")]
    ReadProc {
        /// What.
        what: &'static str,
        /// Why.
        source: io::Error,
    },
    /// `/proc/self/maps` did not parse.
    #[error("cannot parse /proc/self/maps: {0}")]
    Maps(#[from] crac_core::procfs::ProcfsError),
    /// The program's fds or process state could not be captured.
    #[error(transparent)]
    Fds(#[from] FdError),
    /// The temporary image could not be created or made durable.
    #[error(transparent)]
    Durable(#[from] durable::DurableError),
    /// The image could not be written.
    #[error(transparent)]
    Image(ImageError),
    /// Program memory could not be written to the image.
    #[error("cannot write program memory at {addr:#x} to the image: {source}")]
    WriteMemory {
        /// Where.
        addr: u64,
        /// Why.
        source: io::Error,
    },
    /// The image's fd could not be moved out of the program's way.
    #[error("cannot keep the image file out of the program's fds: {0}")]
    ProtectFd(#[source] io::Error),
}

/// One checkpoint at a time.
static LOCK: Mutex<()> = Mutex::new(());
/// How many restarts preceded this process (0 for a launched one); set by the restorer.
static GENERATION: AtomicU32 = AtomicU32::new(0);

/// Records that this process was restarted from an image of `generation` (the next image is
/// `generation + 1`).
pub fn set_generation(generation: u32) {
    GENERATION.store(generation, Ordering::Relaxed);
}

/// Checkpoints this process. Runs on the agent thread.
pub fn checkpoint(
    request: &CheckpointRequest,
    lower: &dyn LowerHalf,
    progress: &mut dyn FnMut(Progress),
) -> Result<CheckpointOutcome, CheckpointError> {
    let _one = match LOCK.try_lock() {
        Ok(g) => g,
        // A panic in an earlier checkpoint released its threads while unwinding; go on.
        Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
        Err(std::sync::TryLockError::WouldBlock) => return Err(CheckpointError::Busy),
    };
    // Before the threads stop: a thread waiting at the gate is in the upper half, where it can
    // be stopped; one inside a CUDA call could not be. Dropped last (declared first): the
    // gate reopens after the threads are released, on every path.
    let device = cuda::DeviceHold::take()?;
    let mem = ProcMem::open(lower).map_err(|source| CheckpointError::ReadProc {
        what: "memory (/proc/self/mem)",
        source,
    })?;
    crac_loader::fds::register(std::os::fd::AsRawFd::as_raw_fd(&mem));
    let (tmp_file, tmp) = durable::create_tmp(&request.path)?;
    let written = write_then_stop(request, lower, &mem, device.as_ref(), tmp_file, progress);
    let (outcome, stopped, fd_capture) = match written {
        Ok(v) => v,
        Err(e) => {
            // The threads (if stopped) went on when the attempt was dropped.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    let outcome = CheckpointOutcome {
        drain: device.as_ref().map_or(Duration::ZERO, |d| d.drain),
        ..outcome
    };
    if request.exit_after {
        // The caller replies and exits; the program must not run past its image.
        std::mem::forget(stopped);
        std::mem::forget(fd_capture);
        if let Some(d) = device {
            d.keep_closed();
        }
        return Ok(outcome);
    }
    stopped.resume_program(fd_capture);
    Ok(outcome)
}

/// Writes the device memory into the image while the program runs (its CUDA calls held at the
/// gate), then stops its threads and writes the rest. The pause reported covers the second
/// part only. On failure the threads, if stopped, are going on again.
fn write_then_stop(
    request: &CheckpointRequest,
    lower: &dyn LowerHalf,
    mem: &ProcMem,
    device: Option<&cuda::DeviceHold>,
    file: std::fs::File,
    progress: &mut dyn FnMut(Progress),
) -> Result<(CheckpointOutcome, quiesce::Stopped, fds::FdCapture), CheckpointError> {
    let begun = write::begin(lower, device, file, progress)?;
    let paused = Instant::now();
    let stopped = quiesce::stop(lower, mem)?;
    let reissued = threads::reissue_interrupted(mem, &stopped.threads);
    if reissued > 0 {
        tracing::debug!("{reissued} interrupted system calls will be issued again");
    }
    let (outcome, fd_capture) = write::write_image(request, lower, begun, &stopped, mem, progress)?;
    let outcome = CheckpointOutcome {
        pause: paused.elapsed(),
        ..outcome
    };
    Ok((outcome, stopped, fd_capture))
}

impl quiesce::Stopped {
    /// Puts back what the fd capture took, then lets the threads go.
    fn resume_program(self, fd_capture: fds::FdCapture) {
        if let Err(e) = fd_capture.resume() {
            tracing::warn!("after the checkpoint: {e}");
        }
        self.resume();
    }
}
